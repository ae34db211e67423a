"""Cord / CSF / background intensity measured the same way on real scans and phantoms.

cord: median intensity inside the cord mask. CSF: on each sagittal slice whose mask area
is at least half the largest, the 90th percentile of the ring 2..4 px (in-plane) around
the mask (the CSF is the brightest thing touching the cord on T2); the median over those
slices. background: mean of the darkest 10% of voxels (air). Per-part values split the
mask into superior / middle / inferior thirds, to give a range on a single real scan.
"""
import numpy as np
import nibabel as nib
from scipy import ndimage as ndi


def canonical(path):
    img = nib.as_closest_canonical(nib.load(path))
    return np.asarray(img.dataobj, dtype=np.float64)


def measure(image_path, mask_path):
    d = canonical(image_path)
    m = canonical(mask_path) > 0.5
    bg = np.sort(d.ravel())[: d.size // 10].mean()
    area = m.sum(axis=(1, 2))
    slices = [k for k in range(m.shape[0]) if area[k] >= 0.5 * area.max()]
    zs = np.where(m.any(axis=(0, 1)))[0]
    thirds = np.array_split(np.arange(zs.min(), zs.max() + 1), 3)
    parts = []
    for part in [None] + thirds:
        cord_v, csf_v = [], []
        for k in slices:
            ms = m[k].copy()
            if part is not None:
                keep = np.zeros(ms.shape[1], bool)
                keep[part] = True
                ms &= keep[None, :]
            if ms.sum() < 10:
                continue
            ring = ndi.binary_dilation(ms, iterations=4) & ~ndi.binary_dilation(ms, iterations=1)
            cord_v.append(d[k][ms])
            csf_v.append(np.percentile(d[k][ring], 90))
        cord = np.median(np.concatenate(cord_v))
        parts.append({'cord': cord, 'csf': float(np.median(csf_v)),
                      'csf/cord': float(np.median(csf_v)) / cord, 'bg/cord': bg / cord})
    return parts
