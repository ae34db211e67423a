#!/usr/bin/python3
"""Phantom contrast against a real scan: CSF/cord and background/cord intensity ratios of
phantoms lie within the range measured on ../shared/data/real/errsm30-full (cord mask
_seg-partial-C3toC5), measured the same way on both (phantom_contrast.py).

The real range is the spread over the whole mask and its superior / middle / inferior
thirds, widened by 10% on each side (one healthy scan cannot span every scanner).
Background: the real scan's air is nearly noise-free (the darkest 10% are all 0; over the
darkest 20% bg/cord is 0.0016); a phantom's must stay below 0.006 (Rician noise of a few
tenths of a percent of the cord's level).
Usage: test_phantom_contrast.py CORDSCOPE_CLI
"""
import os, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import phantom_contrast  # noqa: E402

SKIP = 77


def main():
    cli = sys.argv[1]
    shared = os.environ.get('CS_SHARED_DATA', '')
    real = os.path.join(shared, 'real', 'errsm30-full')
    image = os.path.join(real, 'errsm30_T2w.nii.gz')
    mask = os.path.join(real, 'errsm30_T2w_seg-partial-C3toC5.nii.gz')
    if not (os.path.exists(image) and os.path.exists(mask)):
        print(f'SKIP: {real} not found (set CS_SHARED_DATA)')
        return SKIP

    parts = phantom_contrast.measure(image, mask)
    ratios = [p['csf/cord'] for p in parts]
    lo, hi = 0.9 * min(ratios), 1.1 * max(ratios)
    print(f'real errsm30-full: CSF/cord {ratios[0]:.2f} (parts {min(ratios):.2f}..'
          f'{max(ratios):.2f}), bg/cord {parts[0]["bg/cord"]:.4f}; accepted CSF/cord '
          f'{lo:.2f}..{hi:.2f}, bg/cord <= 0.006')
    assert 2.0 < ratios[0] < 5.0, 'the real measurement itself looks wrong'

    with tempfile.TemporaryDirectory(prefix='cs-phantom-contrast-') as tmp:
        subprocess.run([cli, 'phantom', '--out', tmp, '--count', '8', '--seed', '17',
                        '--quiet'], check=True)
        bad = []
        for i in range(8):
            n = os.path.join(tmp, f'phantom-{i:04d}')
            p = phantom_contrast.measure(n + '.nii.gz', n + '_seg.nii.gz')[0]
            print(f'phantom-{i:04d}: CSF/cord {p["csf/cord"]:.2f} bg/cord {p["bg/cord"]:.4f}')
            if not (lo <= p['csf/cord'] <= hi) or not (0 <= p['bg/cord'] <= 0.006):
                bad.append(i)
        assert not bad, f'phantoms outside the real range: {bad}'
    print('ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
