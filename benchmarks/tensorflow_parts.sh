#!/usr/bin/env bash
# TensorFlow (for tf.data and CLU's summaries) on a GPU machine that reaches no package
# registry and takes at most ~60 MB per transfer: packed here in parts, installed there.
#
#   bash benchmarks/tensorflow_parts.sh pack DIR             # where pip reaches PyPI
#   bash benchmarks/tensorflow_parts.sh install DIR TARGET   # on the GPU machine
#   export PYTHONPATH=TARGET
#
# pack: downloads the tensorflow-cpu wheel (cp312, x86-64) and the small pure-Python
# packages it and our summaries need (keras for TensorBoard's hparams plugin, ml-collections,
# clu, ...) into DIR/wheels; unpacks
# TensorFlow without its C++ headers, strips the debug symbols of its shared libraries
# (788 -> 583 MB for libtensorflow_cc), and writes it as one xz tarball cut into parts
# DIR/part0, DIR/part1 of PART_BYTES (60,800,000) each, one folder per part, so that
# each part can travel on its own (~122 MB in all against the wheel's 274 MB).
# install: joins the parts, checks the sha256 written by pack, unpacks into TARGET and
# installs the small wheels there (no dependencies resolved: the machine has the rest).
set -euo pipefail
PY=${PY:-python3}
TF_VERSION=${TF_VERSION:-2.21.0}
PART_BYTES=${PART_BYTES:-60800000}
SMALL=(astunparse gast google_pasta termcolor "protobuf>=6.31.1,<7" keras namex optree ml_collections clu)

pack() {
  local dir=$1
  mkdir -p "$dir/wheels" "$dir/build"
  local pip=("$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12
             --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
             --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
  "${pip[@]}" -d "$dir/build" "tensorflow-cpu==$TF_VERSION"
  "${pip[@]}" -d "$dir/wheels" "${SMALL[@]}"
  rm -rf "$dir/build/tree" && mkdir "$dir/build/tree"
  (cd "$dir/build/tree" && unzip -q ../tensorflow_cpu-"$TF_VERSION"-*.whl && rm -rf tensorflow/include)
  find "$dir/build/tree" -name '*.so*' -size +1M -exec strip --strip-unneeded {} +
  tar -C "$dir/build/tree" -cf - . | xz -9e -T0 > "$dir/build/tf.tar.xz"
  (cd "$dir/build" && sha256sum tf.tar.xz > "../tf.tar.xz.sha256")
  rm -rf "$dir"/part*
  split -b "$PART_BYTES" -d -a 1 "$dir/build/tf.tar.xz" "$dir/build/tf.tar.xz."
  local f i=0
  for f in "$dir"/build/tf.tar.xz.[0-9]; do
    mkdir -p "$dir/part$i" && mv "$f" "$dir/part$i/" && i=$((i + 1))
  done
  cp "$dir/tf.tar.xz.sha256" "$dir/wheels/"
  rm -rf "$dir/build"
  ls -l "$dir"/part* "$dir/wheels"
}

install() {
  local dir=$1 target=$2 tmp
  tmp=$(mktemp -d)
  cat "$dir"/part*/tf.tar.xz.[0-9] > "$tmp/tf.tar.xz"
  (cd "$tmp" && sha256sum -c "$dir/wheels/tf.tar.xz.sha256" >/dev/null) \
    || { echo "tensorflow_parts: the joined parts do not match the packed sha256" >&2; exit 1; }
  mkdir -p "$target"
  if command -v xz >/dev/null; then
    tar -C "$target" -xJf "$tmp/tf.tar.xz"
  else
    "$PY" -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" \
      "$tmp/tf.tar.xz" "$target"
  fi
  rm -rf "$tmp"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$target" \
    "$dir"/wheels/*.whl
  PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}" "$PY" -c \
    "import tensorflow as tf, clu.metric_writers, ml_collections; print('tensorflow', tf.__version__, 'imports')"
}

case "${1:-}" in
  pack) pack "$2" ;;
  install) install "$2" "$3" ;;
  *) echo "usage: $0 pack DIR | install DIR TARGET" >&2; exit 2 ;;
esac
