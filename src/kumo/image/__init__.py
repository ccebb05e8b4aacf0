"""The image service (Glance v2): images, their bytes, members and the tiny test image."""
