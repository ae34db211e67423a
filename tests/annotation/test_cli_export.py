#!/usr/bin/python3
"""cordscope-cli export on phantoms, checked with Python's csv and json modules and
nibabel: the dataset CSV and JSON, SCT disc-label files on each case's grid (the
annotator's moved and deleted discs applied), and a CSV edited by a spreadsheet-like
writer imported back into the sidecars."""
import csv
import json
import os
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np

CLI = os.environ['CORDSCOPE_CLI']
SEGMENTS = ['C2-3', 'C3-4', 'C4-5', 'C5-6', 'C6-7', 'C7-T1']


def run(*args, ok=True):
    p = subprocess.run([CLI, *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        sys.exit('%s failed (%d): %s' % (' '.join(args), p.returncode, p.stderr))
    return p


def disc_voxels(path):
    data = np.asarray(nib.load(path).dataobj)
    return {int(data[tuple(v)]): tuple(int(x) for x in v) for v in np.argwhere(data != 0)}


def main():
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, 'data')
        run('phantom', '--out', data, '--count', '3', '--seed', '5', '--size', 'small',
            '--jobs', '1')
        names = ['phantom-0000', 'phantom-0001', 'phantom-0002']
        original = disc_voxels(os.path.join(data, names[0] + '_labels-disc.nii.gz'))
        assert all(v in original for v in range(3, 9)), original
        moved = list(original[5])
        moved[1] += 2
        note = 'motion, "ghost" at C5\nsee STIR'
        sidecar = {
            'schema_version': 1, 'case': names[0], 'image': names[0] + '.nii.gz',
            'annotator': 'jd', 'created': '2026-11-27T14:00:00Z',
            'modified': '2026-11-27T14:01:00Z',
            'discs': [{'value': 5, 'voxel': [moved[0], moved[1] + 0.3, moved[2]],
                       'source': 'manual'}],
            'segments': {'C2-3': {'label': 'normal', 'annotator': 'jd',
                                  'time': '2026-11-27T14:00:30Z'},
                         'C4-5': {'label': 'hyperintense', 'annotator': 'mk',
                                  'time': '2026-11-27T14:00:40Z'},
                         'C7-T1': {'label': 'uncertain', 'annotator': None, 'time': None}},
            'flags': {'review': 'fail', 'artifact': True, 'reason': 'wrap, around'},
            'note': note, 'centerline': [], 'discs_removed': [8],
        }
        with open(os.path.join(data, names[0] + '.cordscope.json'), 'w') as f:
            json.dump(sidecar, f)
        detections = [{'format': 'cordscope-detection', 'version': 1, 'case': names[0],
                       'segments': [{'name': n, 'score': 0.25 * i if i != 2 else None}
                                    for i, n in enumerate(SEGMENTS)]}]
        det_path = os.path.join(tmp, 'det.json')
        with open(det_path, 'w') as f:
            json.dump(detections, f)

        out_csv, out_json = os.path.join(tmp, 'ds.csv'), os.path.join(tmp, 'ds.json')
        discs_dir = os.path.join(tmp, 'discs')
        run('export', data, '--csv', out_csv, '--json', out_json, '--discs', discs_dir,
            '--detections', det_path)

        with open(out_csv, newline='', encoding='utf-8') as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 18, len(rows)
        assert list(rows[0].keys()) == ['case', 'segment', 'label', 'annotator', 'time',
                                        'model_score', 'review', 'artifact', 'reason',
                                        'note'], rows[0].keys()
        first = [r for r in rows if r['case'] == names[0]]
        assert [r['segment'] for r in first] == SEGMENTS
        assert [r['label'] for r in first] == ['normal', 'unset', 'hyperintense', 'unset',
                                               'unset', 'uncertain'], first
        assert first[2]['annotator'] == 'mk' and first[2]['time'] == '2026-11-27T14:00:40Z'
        assert first[0]['model_score'] == '0' and first[1]['model_score'] == '0.25'
        assert first[2]['model_score'] == '', first[2]
        assert all(r['note'] == note and r['reason'] == 'wrap, around' and
                   r['review'] == 'fail' and r['artifact'] == 'true' for r in first)
        others = [r for r in rows if r['case'] != names[0]]
        assert all(r['label'] == 'unset' and r['model_score'] == '' for r in others)

        with open(out_json, encoding='utf-8') as f:
            ds = json.load(f)
        assert ds['format'] == 'cordscope-dataset' and len(ds['cases']) == 3
        assert ds['cases'][0]['note'] == note
        assert ds['cases'][0]['model_scores']['C3-4'] == 0.25
        assert ds['cases'][0]['model_scores']['C4-5'] is None
        # Effective discs: the file's, disc 5 moved by the annotator, disc 8 deleted.
        eff = {d['value']: (d['voxel'], d['source']) for d in ds['cases'][0]['effective_discs']}
        assert set(eff) == set(original) - {8}, eff
        assert eff[5] == ([moved[0], moved[1] + 0.3, moved[2]], 'manual'), eff[5]
        assert all(eff[v] == (list(original[v]), 'file') for v in eff if v != 5), eff
        assert ds['cases'][0]['centerline_width'] == 0
        assert [d['value'] for d in ds['cases'][1]['effective_discs']] == sorted(
            disc_voxels(os.path.join(data, names[1] + '_labels-disc.nii.gz')))

        # Discs: the file's, disc 5 where the annotator moved it, disc 8 deleted.
        for name in names:
            image = nib.load(os.path.join(data, name + '.nii.gz'))
            labels = nib.load(os.path.join(discs_dir, name + '_labels-disc.nii.gz'))
            assert labels.shape == image.shape and np.allclose(labels.affine, image.affine,
                                                               atol=1e-4)
            assert labels.get_data_dtype() == np.uint8
        got = disc_voxels(os.path.join(discs_dir, names[0] + '_labels-disc.nii.gz'))
        expect = {v: p for v, p in original.items() if v != 8}
        expect[5] = tuple(moved)
        assert got == expect, (got, expect)
        for name in names[1:]:
            got = disc_voxels(os.path.join(discs_dir, name + '_labels-disc.nii.gz'))
            assert got == disc_voxels(os.path.join(data, name + '_labels-disc.nii.gz'))

        # An unreadable disc file: the labels still export, the JSON says why there are
        # no discs, and --discs fails naming the file.
        broken = os.path.join(data, names[2] + '_labels-disc.nii.gz')
        saved_bytes = open(broken, 'rb').read()
        with open(broken, 'wb') as f:
            f.write(saved_bytes[:100])
        run('export', data, '--csv', out_csv, '--json', out_json)
        with open(out_json, encoding='utf-8') as f:
            ds2 = json.load(f)
        assert 'effective_discs' not in ds2['cases'][2]
        assert names[2] + '_labels-disc.nii.gz' in ds2['cases'][2]['effective_discs_error']
        p = run('export', data, '--discs', os.path.join(tmp, 'discs2'), ok=False)
        assert p.returncode == 1 and names[2] + '_labels-disc' in p.stderr, p.stderr
        with open(broken, 'wb') as f:
            f.write(saved_bytes)

        # The case's own disc folder is refused (never over a file someone made).
        p = run('export', data, '--discs', data, ok=False)
        assert p.returncode == 1 and 'own disc file' in p.stderr, p.stderr

        # A spreadsheet edits the CSV (CRLF, its own quoting) and it comes back in.
        for r in rows:
            if r['case'] == names[1] and r['segment'] == 'C5-6':
                r.update(label='hyperintense', annotator='ab, cd',
                         time='2026-11-27T15:00:00Z')
            if r['case'] == names[1]:
                r['note'] = 'line one\r\nline "two"'
        edited = os.path.join(tmp, 'edited.csv')
        with open(edited, 'w', newline='', encoding='utf-8') as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()), lineterminator='\r\n')
            w.writeheader()
            w.writerows(rows)
        run('export', data, '--import', edited, '--annotator', 'importer')
        with open(os.path.join(data, names[1] + '.cordscope.json'), encoding='utf-8') as f:
            s1 = json.load(f)
        assert s1['segments']['C5-6'] == {'label': 'hyperintense', 'annotator': 'ab, cd',
                                          'time': '2026-11-27T15:00:00Z'}, s1['segments']
        assert s1['note'] == 'line one\r\nline "two"', repr(s1['note'])
        assert s1['annotator'] == 'importer'
        with open(os.path.join(data, names[0] + '.cordscope.json'), encoding='utf-8') as f:
            s0 = json.load(f)
        assert s0['segments']['C4-5']['label'] == 'hyperintense' and s0['note'] == note
        assert s0['discs_removed'] == [8]

        # Unknown case in the CSV: refused, naming the file; nothing changes.
        rows[0]['case'] = 'nobody'
        with open(edited, 'w', newline='', encoding='utf-8') as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)
        before = open(os.path.join(data, names[1] + '.cordscope.json')).read()
        p = run('export', data, '--import', edited, ok=False)
        assert p.returncode == 1 and 'edited.csv' in p.stderr and 'nobody' in p.stderr, p.stderr
        assert open(os.path.join(data, names[1] + '.cordscope.json')).read() == before
        print('export and import checked on', len(names), 'phantoms')


if __name__ == '__main__':
    main()
