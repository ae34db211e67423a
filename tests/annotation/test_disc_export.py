#!/usr/bin/python3
"""The SCT disc-label file Cordscope exports, read back with nibabel: the image's grid
(shape and affine), uint8, exactly one voxel per disc at the nearest voxel, values 3..8."""
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np


def main():
    tool = sys.argv[1]
    # Fractional disc points: each rounds to the nearest voxel (x.4 down, x.6 up).
    discs = {3: (5.4, 10.6, 20.2), 4: (5.0, 19.4, 21.7), 5: (4.6, 28.5001, 22.0),
             6: (5.2, 37.0, 23.4), 7: (5.0, 46.2, 24.6), 8: (6.0, 55.9, 25.0)}
    with tempfile.TemporaryDirectory() as tmp:
        args = [tool, tmp] + ['%d:%r:%r:%r' % (v, *p) for v, p in discs.items()]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()
        assert out.endswith('/case_labels-disc.nii.gz'), out
        image = nib.load(tmp + '/case.nii.gz')
        labels = nib.load(out)
        assert labels.shape == image.shape, (labels.shape, image.shape)
        assert np.allclose(labels.affine, image.affine, atol=1e-5), (labels.affine, image.affine)
        assert nib.aff2axcodes(labels.affine) == ('L', 'I', 'P'), nib.aff2axcodes(labels.affine)
        assert labels.get_data_dtype() == np.uint8, labels.get_data_dtype()
        data = np.asarray(labels.dataobj)
        found = {int(data[tuple(ijk)]): tuple(int(x) for x in ijk)
                 for ijk in np.argwhere(data != 0)}
        assert np.count_nonzero(data) == 6, np.count_nonzero(data)
        expected = {v: tuple(int(np.floor(c + 0.5)) for c in p) for v, p in discs.items()}
        assert found == expected, (found, expected)
        print('disc labels at', found)


if __name__ == '__main__':
    main()
