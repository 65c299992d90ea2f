"""Category names the segmenters speak, and the default routing of categories to experts."""

from __future__ import annotations

# PASCAL VOC 2012, in class-id order (torchvision's VOC weights use the same order).
VOC_CATEGORIES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)

# person -> faces; bird -> birds; farm and pet animals -> animals; the rest -> places.
DEFAULT_ROUTES: dict[str, str] = {
    "person": "faces",
    "bird": "birds",
    "cat": "animals",
    "dog": "animals",
    "horse": "animals",
    "sheep": "animals",
    "cow": "animals",
}
DEFAULT_EXPERT = "places"
