"""Does running the network on the brains' box change the learned forward pass? (issue 14)

On the pairs of bench_learned.py --tag schedules (its preprocessed brains, labels and affines) and its four
models: mean Dice of the moving labels warped (nearest) by the forward field predicted on the whole grid,
on the box plus 8 voxels (16 mm, the default), that box with its start aligned to the network's stride,
and plus 16 voxels aligned; and the affine alone. A proxy for the workflow's Dice (torch nearest warp on the
affinely resampled labels, not ANTs' composed transforms), for comparing the crops with one another.

    python bench/bench_learned_crop.py > bench/results/learned_crop_check.txt
"""
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cohortreg.io import nib_to_ants
from cohortreg.learn.data import load_subject, make_pair
from cohortreg.learn.checkpoint import load_model
from cohortreg.learn.network import infer, pooling_factor
from cohortreg.torchreg.crop import brain_box, uncrop
from cohortreg.torchreg.fields import warp
from cohortreg.evaluation.metrics import dice_per_label
torch.set_num_threads(2)
O = sys.argv[1] if len(sys.argv) > 1 else 'bench/work/learned_2mm_inference_schedules/out'
M = sys.argv[2] if len(sys.argv) > 2 else 'bench/work/models_8min'
pairs = [('lpba40', f'S0{i}', 'S01') for i in range(2, 10)] + [('oasis', '11', '10'), ('oasis', '12', '10')]
data = {}
for c, m, f in pairs:
    a = lambda s, k: f'{O}/{c}/sub-{s}/anat/sub-{s}_{k}'
    brain, dseg = 'desc-brain_T1w.nii.gz', 'desc-preproc_dseg.nii.gz'
    ref = nib_to_ants(nib.load(a(f, brain)))
    data[(c, m)] = make_pair(load_subject(c, m, a(m, brain), a(m, dseg), ref, f'{O}/{c}/sub-{m}/to-{f}/init/affine.mat'),
                             load_subject(c, f, a(f, brain), a(f, dseg), ref, None))
def dice(p, u):
    ml = torch.from_numpy(p.moving_labels.astype(np.float32))[None, None]
    w = warp(ml, u, mode='nearest').round().long()[0, 0].numpy()
    d = dice_per_label(p.fixed_labels, w)
    return np.nanmean(list(d.values()))
def box_of(p, margin, align):
    b = brain_box(p.fixed, p.moving, margin=margin)
    if align > 1:
        b = tuple(slice((s.start // align) * align, s.stop) for s in b)
    return b
for model in ('vxm_lpba_unsup', 'vxm_lpba_weak', 'vxm_oasis_unsup', 'vxm_oasis_weak'):
    net, doc = load_model(f'{M}/{model}/model.pt'); gs = int(doc['grid_scale']); fac = pooling_factor(tuple(doc['network']['channels']))
    res = {}
    for (c, m), p in data.items():
        full = tuple(p.fixed.shape[2:])
        with torch.no_grad():
            for name, b in (('full', None), ('box8', box_of(p, 8, 1)), ('box8a', box_of(p, 8, gs * fac)), ('box16a', box_of(p, 16, gs * fac))):
                if b is None:
                    u, _ = infer(net, p.fixed, p.moving, gs, fac)
                else:
                    u, _ = infer(net, p.fixed[(..., *b)], p.moving[(..., *b)], gs, fac); u = uncrop(u, b, full)
                res.setdefault((c, name), []).append(dice(p, u))
        res.setdefault((c, 'affine'), []).append(dice(p, torch.zeros(1, 3, *full)))
    print(model, {f'{k[0]}/{k[1]}': round(float(np.mean(v)), 4) for k, v in sorted(res.items())}, flush=True)
