"""The compute conductor (Nova's ``nova-conductor``): builds, reschedules, resizes and the build-timeout sweep."""
