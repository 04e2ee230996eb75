"""HRNet."""
