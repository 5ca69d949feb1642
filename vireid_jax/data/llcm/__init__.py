"""LLCM (Zhang and Wang, CVPR 2023): 46,767 low-light images of 1,064 identities from 9 cameras.

Everything the code knows about LLCM is in this package: the reader
(`reader`), the test protocol of DEEN's code (`protocol`), the check
(`check`), the synthetic layout (`layout`) and, below, the declaration that
ties them together (`DATASET`, listed in `vireid_jax.data.registry`).
713 identities train; the other 351 test, in ten gallery draws.
"""

from __future__ import annotations

from vireid_jax.data.dataset import Dataset, SyntheticLayout, TfdsLayout
from vireid_jax.data.llcm import check, layout, protocol
from vireid_jax.data.llcm.reader import (HOW_TO_GET, TEST_FOLDERS, LlcmTestSet, load_test,
                                         load_train)
from vireid_jax.data.records import INFRARED, VISIBLE

TFDS_TEST_SPLITS = {VISIBLE: "test_visible", INFRARED: "test_infrared"}


def _test_paths(test_set: LlcmTestSet):
  return tuple((f"{TEST_FOLDERS[m]} ({'visible' if m == VISIBLE else 'infrared'})",
                [r.path for r in test_set.records(m)]) for m in (VISIBLE, INFRARED))


DATASET = Dataset(
    name="llcm",
    title="LLCM",
    image_size=(384, 144),          # DEEN's 384 x 144 (height x width)
    how_to_get=HOW_TO_GET,
    load_train=lambda root, split: load_train(root),
    load_test=lambda root, split: load_test(root),
    test_paths=_test_paths,
    test_lists="idx/test_id.txt, test_vis/, test_nir/",
    suite=protocol.SUITE,
    scan=check.scan,
    tfds=TfdsLayout(
        builder_name="llcm",
        description=("LLCM: 1,064 identities seen by 9 cameras in visible and near-infrared "
                     "light. label is the training class (train) or the person id (test)."),
        homepage="https://github.com/ZYK100/LLCM",
        instructions=(
            "Request LLCM from its authors (https://github.com/ZYK100/LLCM, the signed dataset "
            "release agreement) and unpack it so that manual_dir contains idx/ (train_vis.txt, "
            "train_nir.txt, test_id.txt), the training images and test_vis/, test_nir/. Then run "
            "python -m vireid_jax.data.prepare_tfds --dataset=llcm --manual_dir=ROOT "
            "--data_dir=DATA_DIR."),
        test_splits=lambda test_set: {
            TFDS_TEST_SPLITS[m]: (test_set.records(m), [r.label for r in test_set.records(m)])
            for m in (VISIBLE, INFRARED)},
        test_set=lambda records, metadata: LlcmTestSet(
            visible=records[TFDS_TEST_SPLITS[VISIBLE]],
            infrared=records[TFDS_TEST_SPLITS[INFRARED]],
            test_ids=tuple(int(i) for i in metadata["test_ids"])),
        test_metadata=lambda test_set: {"test_ids": list(test_set.test_ids)}),
    synthetic=SyntheticLayout(write=layout.write, images_per_cam=(2, 6), min_ids=4,
                              sheet_cells=layout.sheet_cells, split=layout.split),
)
