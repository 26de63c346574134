"""ANTs SyN preset exploration on LPBA40 S02 -> S01 at 2 mm (standalone: antspyx default Affine, then SyNOnly).

Usage: python bench/bench_ants_presets.py lpba 2   (prints identity/affine Dice, then Dice and seconds per setting)
"""
import ants, numpy as np, time, nibabel as nib, sys
from cohortreg.sheet.datasets import SHARED_DATA
D=str(SHARED_DATA)+'/'
coh=sys.argv[1]; sp=float(sys.argv[2])
if coh=='oasis':
    f=D+'oasis-trt-20/sub-01/'; m=D+'oasis-trt-20/sub-03/'; lab='labels_dkt31_aseg.nii.gz'
else:
    f=D+'lpba40/sub-S01/'; m=D+'lpba40/sub-S02/'; lab='labels_lpba56.nii.gz'
def load(p):
    t=ants.image_read(p+'t1w_brain.nii.gz'); l=ants.image_read(p+lab)
    t=ants.resample_image(t,(sp,)*3,False,0); l=ants.resample_image_to_target(l,t,'genericLabel')
    a=t.numpy(); lo,hi=np.percentile(a[a>0],[0.5,99.5]); t=t.new_image_like(np.clip((a-lo)/(hi-lo),0,1)*(a>0))
    return t,l
F,FL=load(f); M,ML=load(m)
print(F.shape, F.direction, F.origin, M.direction)
def dice(a,b):
    a=a.numpy().astype(int); b=b.numpy().astype(int)
    labs=np.intersect1d(np.unique(a),np.unique(b)); labs=labs[labs>0]
    return np.mean([2*((a==l)&(b==l)).sum()/((a==l).sum()+(b==l).sum()) for l in labs])
t=time.time(); r=ants.registration(F,M,'Affine',aff_metric='mattes'); ta=time.time()-t
w=ants.apply_transforms(F,ML,r['fwdtransforms'],interpolator='genericLabel')
print('identity',dice(FL,ants.resample_image_to_target(ML,F,'genericLabel')),'affine',dice(FL,w),ta, r['fwdtransforms'])
for name,kw in [("MI100-70-20",dict(reg_iterations=(100,70,20))),("CC2-100-50-0",dict(syn_metric="CC",syn_sampling=2,reg_iterations=(100,50,0))),("CC2-60-30-10",dict(syn_metric="CC",syn_sampling=2,reg_iterations=(60,30,10))),("CC2-100-70-20",dict(syn_metric="CC",syn_sampling=2,reg_iterations=(100,70,20)))]:
    t=time.time(); s=ants.registration(F,M,'SyNOnly',initial_transform=r['fwdtransforms'][0],**kw); ts=time.time()-t
    w=ants.apply_transforms(F,ML,s['fwdtransforms'],interpolator='genericLabel')
    print(name,dice(FL,w),ts,s['fwdtransforms'],s['invtransforms'])
