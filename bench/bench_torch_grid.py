"""Torch engine settings grid on one LPBA40 pair (S02 -> S01, 2 mm), Dice after ANTs applies our files.

Needs the preprocessed images of a 2 mm classical bench run (bench_classical.py --spacing 2).
Prints one line per setting: lr, grad sigma, warp sigma, iterations, LNCC window, Dice, seconds, folding.
"""
import ants, numpy as np, time, torch, itertools
import nibabel as nib
from cohortreg.io import nib_to_ants
from cohortreg.metrics import dice_per_label
from cohortreg.torchreg.greedy import register_greedy, GreedySettings
from cohortreg.registration.torch_greedy import voxel_to_ants_field
torch.set_num_threads(2)
import sys
W=sys.argv[1] if len(sys.argv) > 1 else 'bench/work/classical_2mm_default/out/lpba40/'
f=nib_to_ants(nib.load(W+'sub-S01/anat/sub-S01_desc-brain_T1w.nii.gz')); m=nib_to_ants(nib.load(W+'sub-S02/anat/sub-S02_desc-brain_T1w.nii.gz'))
fl=nib.load(W+'sub-S01/anat/sub-S01_desc-preproc_dseg.nii.gz').get_fdata(); ml=nib_to_ants(nib.load(W+'sub-S02/anat/sub-S02_desc-preproc_dseg.nii.gz'))
from cohortreg.registration import estimate_affine
from pathlib import Path
import os; os.environ['ANTS_RANDOM_SEED']='42'
aff=estimate_affine(f,m,Path('/tmp/cohortreg_grid_aff.mat'))
print('affine done',flush=True)
ma=ants.apply_transforms(f,m,[aff])
F=torch.tensor(f.numpy())[None,None]; M=torch.tensor(ma.numpy())[None,None]
for lr,gs,ws,sc,it,win in [(0.1,1,0.5,(4,2,1),(100,50,20),7),(0.05,1,0.5,(4,2,1),(200,100,20),7),(0.1,2,0.5,(4,2,1),(200,100,20),7),(0.2,2,1.0,(4,2,1),(200,100,20),7),(0.1,1,0.5,(4,2,1),(200,100,20),5),(0.1,2,0.5,(4,2,1),(200,100,50),5)]:
    t=time.time(); u=register_greedy(F,M,GreedySettings(scales=sc,iterations=it,lr=lr,grad_sigma=gs,warp_sigma=ws,window=win)); s=time.time()-t
    ants.image_write(voxel_to_ants_field(u[0].numpy(), f),'/tmp/cohortreg_grid_w.nii.gz')
    wa=ants.apply_transforms(f,ml,['/tmp/cohortreg_grid_w.nii.gz',aff],interpolator='genericLabel').numpy()
    from cohortreg.pair import warp_jacobian
    j=warp_jacobian('/tmp/cohortreg_grid_w.nii.gz')
    print(lr,gs,ws,it,win,'dice',round(np.mean(list(dice_per_label(fl,wa).values())),4),'s',round(s,1),'fold',(j<=0).mean(), flush=True)
