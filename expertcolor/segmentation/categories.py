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

# The routing groups that evaluation and segmenter training score (ids as in mixed/groups masks):
# the three subjects with an expert of their own, and everything else.
ROUTING_GROUPS: tuple[str, ...] = ("background", "person", "bird", "animal")
#: VOC-21 id -> routing group id (person -> 1, bird -> 2, cat/cow/dog/horse/sheep -> 3, else 0).
VOC_TO_GROUP: tuple[int, ...] = tuple(
    1 if c == "person" else 2 if c == "bird" else 3 if DEFAULT_ROUTES.get(c) == "animals" else 0
    for c in VOC_CATEGORIES
)
