#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run (a few minutes on one GPU), for a machine that has
# PyTorch, torchvision, Pillow, matplotlib, tqdm and pytest but no internet and no data sets:
#   1. the CUDA tests (AMP paths, the training loop, distributed helpers, colour data);
#   2. the command line under torchrun with NCCL, one process per GPU (SyncBatchNorm with 2 or
#      more), on a generated image folder, held as uint8 on the GPU and streamed from disk (pinned
#      memory), and a colour sample grid from its checkpoint;
#   3. benchmarks/memory.py with the GPU's peak memory;
#   4. benchmarks/distributed.py (NCCL scaling; needs 2 GPUs for the second figure);
#   5. benchmarks/gpu_throughput.py (the package's loop against a plain one).
# Everything goes to the log in OUT (default gpu-checks/); a failing step is reported and the
# next one runs. DEVICE=cpu runs the same steps on the CPU (small sizes), to try the script.
#
#     bash benchmarks/gpu_checks.sh [OUT]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-checks}
device=${DEVICE:-cuda}
py=${PYTHON:-python3}
mkdir -p "$out"
log="$out/log.txt"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" GAN_TUTORIAL_FAST=1 MPLBACKEND=Agg
failed=()
step() {   # step NAME COMMAND...: run it, log it, remember a failure
    local name=$1; shift
    echo "=== $name: $*" | tee -a "$log"
    local start=$SECONDS
    if "$@" >>"$log" 2>&1; then
        echo "    ok ($((SECONDS - start)) s)" | tee -a "$log"
    else
        echo "    FAILED ($((SECONDS - start)) s; see $log)" | tee -a "$log"
        failed+=("$name")
    fi
}

if [ "$device" = cuda ]; then
    gpus=$("$py" -c "import torch; print(torch.cuda.device_count())")
    images=(10000 202599); steps=200
else
    gpus=1; images=(500 5000); steps=5
fi
"$py" -c "import torch; print('torch', torch.__version__, '| CUDA', torch.version.cuda, '|', \
[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])" | tee -a "$log"

step tests "$py" -m pytest -q -p no:cacheprovider -o addopts="-ra" tests/test_amp.py tests/test_train.py \
    tests/test_distributed.py tests/test_images.py tests/test_cli_colour.py

step folder "$py" -c "
import sys; sys.path.insert(0, 'benchmarks')
from pathlib import Path
from memory import make_folder
make_folder(Path('$out/data'), 2000, 200)"
pics="folder:$out/data/celeba/img_align_celeba"
for mode in memory stream; do
    extra=(); [ $mode = stream ] && extra=(--stream --workers 4)
    [ "$gpus" -gt 1 ] && extra+=(--sync-bn)
    rm -rf "$out/run-$mode"
    step "torchrun ($gpus x $device, $mode)" "$py" -m torch.distributed.run --standalone --nproc_per_node "$gpus" \
        -m gan_tutorial train --model dcgan --dataset "$pics" --image-size 64 --steps "$steps" --log-every 50 \
        --global-batch-size $((64 * gpus)) --device "$device" --out "$out/run-$mode" "${extra[@]}"
done
step sample "$py" -m gan_tutorial sample --checkpoint "$out/run-memory/dcgan.pt" --num-samples 64 \
    --out "$out/samples.png" --device "$device"

step memory "$py" benchmarks/memory.py --device "$device" --images "${images[@]}" --steps 20
step scaling "$py" benchmarks/distributed.py --device "$device" --steps 20
[ "$device" = cuda ] && step throughput "$py" benchmarks/gpu_throughput.py

grep -E "^(images|  *[0-9,]+ |streamed|held|1 process|2 processes|efficiency|[0-9]+ passed|FAILED)" "$log" || true
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}"
    exit 1
fi
echo "all steps ran"
