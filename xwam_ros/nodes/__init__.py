"""The rclpy nodes of xwam, one module each, each with a `main()` console entry point."""
