"""Shared helpers of the xwam test suite (real rclpy, real processes; nothing mocked)."""
