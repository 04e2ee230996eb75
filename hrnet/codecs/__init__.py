"""Target codecs kept apart from the networks: keypoints <-> training targets."""

from hrnet.codecs.heatmap import MSRAHeatmapCodec, flip_heatmaps, transform_preds

__all__ = ["MSRAHeatmapCodec", "flip_heatmaps", "transform_preds"]
