"""Detection frameworks on an HRNet feature extractor, one module each, registered in
:data:`hrnet.models.registries.DETECTORS`. Each module's ``build(features, num_classes, settings)``
assembles the framework from torchvision's parts around ``features`` (a module returning an ordered
dict of maps, with ``out_channels`` and ``strides``)."""
