"""Benchmarks behind the console commands: ``hrnet bench`` (:mod:`.throughput`: model train and
inference speed and memory next to timm's HRNet) and ``hrnet bench-data`` (:mod:`.data_loading`:
samples/s of one data worker). Both print a table and write a JSON report (:mod:`.report`)."""
