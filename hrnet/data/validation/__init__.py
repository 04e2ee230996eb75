"""Checks of the input data before the prepare stage indexes it.

Every problem is one line that names the file and the record::

    <file>: <record>: <what is wrong> (expected <what would be right>)

- :mod:`.layout`: ``data.root`` exists, a COCO split's annotation file and image folder are
  where the layout puts them (with a hint when they sit somewhere else);
- the COCO file and its records: :func:`hrnet.data.formats.coco.load_coco`;
- :mod:`.image_files`: every image a kept record needs is present, not empty, not truncated,
  decodable and of the stated size;
- :mod:`.coco_split` and :mod:`.cityscapes_split`: all of it for one split of a task;
  :func:`hrnet.data.formats.seg_pairs.check_listing` for the other segmentation layouts (PASCAL-Context,
  LIP, folder), whose records their ``hrnet.data.formats.<layout>.list_split`` lists.

Layout and whole-file problems always raise. Record and file problems go to the
:class:`~hrnet.data.issues.IssueLog` each check is given: with ``on_bad_sample="fail"`` (the
default) the first one raises :class:`~hrnet.errors.DataError`; with ``"skip"`` the bad record
(or the bad image with all its annotations) is dropped and listed in the report.
"""

from hrnet.data.formats.coco import read_annotation_file
from hrnet.data.formats.coco_records import CheckedRecords, validate_records
from hrnet.data.issues import Issue, IssueLog, OnBadSample
from hrnet.data.validation.cityscapes_split import check_cityscapes_split
from hrnet.data.validation.coco_split import CheckedSplit, check_coco_split
from hrnet.data.validation.image_files import check_image_file, check_images
from hrnet.data.validation.layout import locate_split

__all__ = [
    "CheckedRecords",
    "CheckedSplit",
    "Issue",
    "IssueLog",
    "OnBadSample",
    "check_cityscapes_split",
    "check_image_file",
    "check_images",
    "check_coco_split",
    "locate_split",
    "read_annotation_file",
    "validate_records",
]
