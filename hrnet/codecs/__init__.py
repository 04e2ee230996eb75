"""Target codecs kept apart from the networks: keypoints <-> training targets, and test-time decoding."""

from hrnet.codecs.heatmap import MSRAHeatmapCodec, transform_preds

__all__ = ["MSRAHeatmapCodec", "transform_preds"]
