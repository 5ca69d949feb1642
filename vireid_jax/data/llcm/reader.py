"""LLCM on disk -> records. Plain numpy/stdlib: runs where TensorFlow is absent.

Layout (docs/method.md, "Datasets on disk"), as DEEN's code reads it:

    ROOT/idx/train_vis.txt, train_nir.txt   lines "<path relative to ROOT> <integer label>"
    ROOT/idx/test_id.txt                    one line of comma-separated test person ids
    ROOT/test_vis/cam1 .. cam9/PPPP/*.jpg   visible test images
    ROOT/test_nir/camK/PPPP/*.jpg           near-infrared test images, K in 1, 2, 4 .. 9

Training labels are read as written (0..C-1, the same set in both lists);
test camera and identity come from the path (camK/PPPP). The test records
are in DEEN's order: ids ascending, cameras in order, files sorted. Every
(person, camera) folder of a test id must hold images, every camera folder
must exist and hold some, and every test id must have images: the
galleries draw one image of each such folder.
"""

from __future__ import annotations

import dataclasses
import os

from vireid_jax.data import lists
from vireid_jax.data.records import INFRARED, VISIBLE, ImageRecord, TrainSet, check_dataset_root
from vireid_jax.errors import DataError

CAMERAS = {VISIBLE: tuple(range(1, 10)), INFRARED: (1, 2, 4, 5, 6, 7, 8, 9)}  # no NIR camera 3
TEST_FOLDERS = {VISIBLE: "test_vis", INFRARED: "test_nir"}
TRAIN_LISTS = ("idx/train_vis.txt", "idx/train_nir.txt")
TEST_ID_LIST = "idx/test_id.txt"
HOW_TO_GET = (
    "LLCM cannot be downloaded automatically: send its authors the signed dataset release "
    "agreement (https://github.com/ZYK100/LLCM), unpack it so that ROOT contains idx/ "
    "(train_vis.txt, train_nir.txt, test_id.txt), the training images those lists name, "
    "test_vis/cam1..cam9/ and test_nir/cam1,cam2,cam4..cam9/, and pass "
    "--config.data.root=ROOT. For a synthetic stand-in in the same layout: "
    "python -m vireid_jax.data.synthetic --layout=llcm --out=DIR.")
SOURCE = lists.Source("LLCM", HOW_TO_GET, recopy="Re-copy idx/ from the LLCM archive.",
                      root_hint="Is ROOT the folder that holds idx/ and the images?")


@dataclasses.dataclass(frozen=True)
class LlcmTestSet:
  """The LLCM test set: every test image of each modality, in DEEN's query order.

  Attributes:
    visible, infrared: records (label = person id) ordered by person id, then
      camera, then file name.
    test_ids: the test person ids, ascending.
  """
  visible: tuple[ImageRecord, ...]
  infrared: tuple[ImageRecord, ...]
  test_ids: tuple[int, ...]

  def records(self, modality: int) -> tuple[ImageRecord, ...]:
    return self.visible if modality == VISIBLE else self.infrared

  def folders(self, modality: int) -> list[tuple[tuple[int, int], tuple[str, ...]]]:
    """((person id, camera), sorted paths) of every folder of the modality, in record order."""
    grouped: dict[tuple[int, int], list[str]] = {}
    for r in self.records(modality):
      grouped.setdefault((r.label, r.camera), []).append(r.path)
    return [(key, tuple(paths)) for key, paths in grouped.items()]


def _root(root: str, required: tuple[str, ...]) -> str:
  root = os.path.abspath(os.path.expanduser(root)) if root else root
  check_dataset_root(root, required, "LLCM", HOW_TO_GET)
  return root


def camera_folders() -> tuple[str, ...]:
  """Every test camera folder, relative to ROOT."""
  return tuple(f"{TEST_FOLDERS[m]}/cam{c}" for m in (VISIBLE, INFRARED) for c in CAMERAS[m])


def load_train(root: str) -> TrainSet:
  """The training set of idx/train_vis.txt and idx/train_nir.txt, labels as written."""
  root = _root(root, TRAIN_LISTS)
  return lists.labelled_train_set(root, TRAIN_LISTS, SOURCE,
                                  lambda modality, rel: lists.camera_of(rel))


def load_test(root: str) -> LlcmTestSet:
  """Every test image of the ids in idx/test_id.txt, refusing folders the draws cannot use."""
  root = _root(root, (TEST_ID_LIST,) + camera_folders())
  for rel in camera_folders():
    folder = os.path.join(root, rel)
    if not any(lists.image_files(os.path.join(folder, name)) for name in os.listdir(folder)):
      raise DataError(f"LLCM at {root!r}: {rel}/ holds no person folder with images: the copy "
                      "is incomplete; re-copy test_vis/ and test_nir/ from the LLCM archive.")
  test_ids = tuple(sorted(set(lists.read_id_list(os.path.join(root, TEST_ID_LIST), SOURCE))))
  records = {VISIBLE: [], INFRARED: []}
  for modality, out in records.items():
    for pid in test_ids:
      for cam in CAMERAS[modality]:
        folder = os.path.join(root, TEST_FOLDERS[modality], f"cam{cam}", f"{pid:04d}")
        if not os.path.isdir(folder):
          continue
        files = lists.image_files(folder)
        if not files:
          raise DataError(
              f"LLCM at {root!r}: {folder} holds no images, but the galleries draw one image "
              "from every (person, camera) folder of a test id (as DEEN's code does): restore "
              "its images from the LLCM archive, or remove the empty folder.")
        out.extend(ImageRecord(p, pid, cam, modality) for p in files)
  for modality, out in records.items():
    if not out:
      raise DataError(f"LLCM at {root!r}: no {TEST_FOLDERS[modality]}/ images of the test ids "
                      f"in {TEST_ID_LIST}: re-copy the test images from the LLCM archive.")
  seen = {r.label for rs in records.values() for r in rs}
  missing = [pid for pid in test_ids if pid not in seen]
  if missing:
    raise DataError(
        f"LLCM at {root!r}: test ids {missing[:10]}{' ...' if len(missing) > 10 else ''} "
        f"({len(missing)} of {len(test_ids)} in {TEST_ID_LIST}) have no images under "
        "test_vis/ or test_nir/: re-copy the test images, or the archive's idx/test_id.txt.")
  return LlcmTestSet(visible=tuple(records[VISIBLE]), infrared=tuple(records[INFRARED]),
                     test_ids=test_ids)
