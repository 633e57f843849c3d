#!/usr/bin/env bash
# The GPU checks of the data path, in one call on a machine with a CUDA GPU (none was lent when
# it was written): the CUDA tests, then ResNet-18 SimCLR images/s on CIFAR-10 from memory, the
# folder's cache store, a store and WebDataset shards decoded on the GPU (nvJPEG).
#
#   bash benchmarks/gpu_check.sh            # from the repository root; about 5 minutes
#
# It needs data/cifar10-jpg/{train,test} (git-ignored): it unpacks data/cifar10-jpg.tar.gz or
# ../shared/data/cifar10-jpg.tar.gz when the folder is missing, so carry either with the tree.
set -euo pipefail
cd "$(dirname "$0")/.."

python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

if [ ! -d data/cifar10-jpg/train ]; then
    for archive in data/cifar10-jpg.tar.gz ../shared/data/cifar10-jpg.tar.gz; do
        if [ -f "$archive" ]; then
            mkdir -p data && tar -xzf "$archive" -C data && break
        fi
    done
fi
[ -d data/cifar10-jpg/train ] || { echo "data/cifar10-jpg is missing" >&2; exit 1; }

# The tests that run only on CUDA (each skips elsewhere): GPU JPEG decoding equals the CPU
# decoder, GPU augmentation, kNN on the device, a pretrain on cuda.
python -m pytest -q -p no:cacheprovider -rs \
    tests/data/test_shards.py tests/augment/test_augment_pipeline.py \
    tests/evaluate/test_evaluate_knn.py tests/train/test_pretrain.py -k "cuda or gpu or CUDA"

# Images/s, one sitting, sources interleaved: memory (.npz), folder (its cache store), store,
# wds (shards decoded on the GPU: data.gpu_decode is on by default under CUDA).
PYTHONPATH=src python benchmarks/data_throughput.py --backbone resnet18 --device cuda \
    --batch-size 256 --steps 100 --warmup 10 --repeats 3 --threads 8
