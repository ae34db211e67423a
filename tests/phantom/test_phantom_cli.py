#!/usr/bin/python3
"""`cordscope-cli phantom`, checked with nibabel (independent of Cordscope's NIfTI code).

Same seed -> the same bytes; another seed -> other bytes; every file of a case shares one
grid; the storage orientation varies and truth.json names it; disc labels 3..8 once each,
superior to inferior in RAS mm; lesions inside _seg; the hyperintense segments of
truth.json follow from the lesion mask and the disc labels by DESIGN.md's rule (worked
out here in display rows of nibabel's canonical reorientation); bad options fail cleanly.
Usage: test_phantom_cli.py CORDSCOPE_CLI
"""
import hashlib, json, os, subprocess, sys, tempfile
import numpy as np
import nibabel as nib

SEGMENTS = ['C2-3', 'C3-4', 'C4-5', 'C5-6', 'C6-7', 'C7-T1']
SUFFIXES = ['.nii.gz', '_seg.nii.gz', '_labels-disc.nii.gz', '_lesion.nii.gz', '_truth.json']


def run(cli, out, *args, check=True):
    return subprocess.run([cli, 'phantom', '--out', out, '--quiet'] + list(args),
                          capture_output=True, text=True, check=check)


def digest(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def canonical(path):
    img = nib.as_closest_canonical(nib.load(path))
    return np.asarray(img.dataobj)


def check_case(folder, name):
    truth = json.load(open(f'{folder}/{name}_truth.json'))
    imgs = [nib.load(f'{folder}/{name}{s}') for s in SUFFIXES[:4]]
    for im in imgs[1:]:
        assert im.shape == imgs[0].shape, name
        assert np.allclose(im.affine, imgs[0].affine), name
    codes = ''.join(nib.aff2axcodes(imgs[0].affine))
    assert codes == truth['orientation'], (codes, truth['orientation'])
    assert imgs[0].get_data_dtype() == np.int16

    # canonical RAS: axis 0 L->R, 1 P->A, 2 I->S; display row 0 = most superior
    seg = canonical(f'{folder}/{name}_seg.nii.gz') > 0
    lesion = canonical(f'{folder}/{name}_lesion.nii.gz') > 0
    discs = canonical(f'{folder}/{name}_labels-disc.nii.gz')
    nz = discs.shape[2]
    assert not (lesion & ~seg).any(), f'{name}: lesion voxels outside _seg'
    values = sorted(int(v) for v in np.unique(discs) if v)
    assert set(range(3, 9)) <= set(values) <= set(range(2, 10)), values
    rows = {}
    for v in values:
        where = np.argwhere(discs == v)
        assert len(where) == 1, f'{name}: disc {v} has {len(where)} voxels'
        rows[v] = nz - 1 - where[0][2]
    assert all(rows[v] < rows[v + 1] for v in values[:-1]), rows  # superior to inferior

    # DESIGN.md: segment k spans the rows between the midpoints to the neighbouring discs,
    # the first and last extended by half the neighbouring gap
    r = [rows[v] for v in range(3, 9)]
    spans = []
    for k in range(6):
        top = (r[k - 1] + r[k]) / 2 if k > 0 else r[0] - (r[1] - r[0]) / 2
        bottom = (r[k] + r[k + 1]) / 2 if k < 5 else r[5] + (r[5] - r[4]) / 2
        spans.append((top, bottom))
    lesion_rows = set(nz - 1 - np.argwhere(lesion)[:, 2])
    hyper = [SEGMENTS[k] for k, (top, bottom) in enumerate(spans)
             if any(top < row < bottom for row in lesion_rows)]
    assert hyper == truth['hyperintense_segments'], (name, hyper, truth['hyperintense_segments'])
    assert truth['abnormal'] == bool(lesion.any()) == bool(truth['lesions'])
    for s in SEGMENTS:
        assert truth['segments'][s] == ('hyperintense' if s in hyper else 'normal')
    assert sum(l['voxels'] for l in truth['lesions']) == int(lesion.sum())
    for l in truth['lesions']:
        assert l['segment'] in hyper
        assert 0.1 <= l['contrast'] <= 0.9
    assert truth['generator'].startswith('cordscope-phantom')
    return codes


def main():
    cli = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix='cs-phantom-cli-') as tmp:
        a, b, c = (os.path.join(tmp, x) for x in 'abc')
        args = ['--count', '8', '--seed', '5', '--size', 'small', '--lesion-rate', '0.6']
        run(cli, a, *args)
        run(cli, b, *args, '--jobs', '1')
        run(cli, c, '--count', '8', '--seed', '6', '--size', 'small', '--lesion-rate', '0.6')
        names = sorted(os.listdir(a))
        assert len(names) == 8 * len(SUFFIXES), names
        assert names == sorted(os.listdir(b))
        for n in names:
            assert digest(f'{a}/{n}') == digest(f'{b}/{n}'), f'{n} differs between runs'
        differ = sum(digest(f'{a}/{n}') != digest(f'{c}/{n}')
                     for n in names if n.endswith('.nii.gz'))
        assert differ >= 8 * 3, 'another seed should give other images and masks'

        codes = {check_case(a, f'phantom-{i:04d}') for i in range(8)}
        assert len(codes) >= 3, codes
        abnormal = sum(json.load(open(f'{a}/phantom-{i:04d}_truth.json'))['abnormal']
                       for i in range(8))
        assert 1 <= abnormal <= 7, abnormal

        # --no-CONFOUNDER is recorded in the truth
        d = os.path.join(tmp, 'd')
        run(cli, d, '--count', '1', '--seed', '5', '--size', 'small', '--no-gibbs', '--no-flow')
        t = json.load(open(f'{d}/phantom-0000_truth.json'))
        assert not t['confounders']['gibbs'] and not t['confounders']['flow']
        assert t['confounders']['drift'] and t['confounders']['seg-error']
        check_case(d, 'phantom-0000')

        # bad options: a message naming the problem, exit status 1, nothing written
        e = os.path.join(tmp, 'e')
        for bad in (['--count', 'many'], ['--no-sparkle'], ['--lesion-rate', '1.5'],
                    ['--seed', '-3'], ['--size', 'huge']):
            p = run(cli, e, *bad, check=False)
            assert p.returncode == 1, (bad, p.returncode)
            assert 'cordscope-cli phantom' in p.stderr, p.stderr
            assert not os.path.exists(e)
        p = subprocess.run([cli, 'phantom', '--count', '1'], capture_output=True, text=True)
        assert p.returncode == 1 and '--out' in p.stderr
        p = subprocess.run([cli, 'phantom', '--help'], capture_output=True, text=True)
        assert p.returncode == 0 and '--lesion-rate' in p.stdout
    print('ok')


if __name__ == '__main__':
    main()
