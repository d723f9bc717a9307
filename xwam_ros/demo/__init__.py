"""`xwam demo`: the closed loop on the simulated arm, watched, reported, and shown as a reel."""
