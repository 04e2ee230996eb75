"""Readers of the dataset formats on disk: COCO annotation files (:mod:`.coco`, records checked by
:mod:`.coco_records`) and the Cityscapes folder layout (:mod:`.cityscapes`)."""
