/* cs-sidecar.h: a case's annotations, NAME.cordscope.json. No GTK here.
 *
 * Schema version 1 (every key is written; on reading, keys other than schema_version
 * may be absent and then take their empty value; unknown keys are ignored):
 * {
 *   "schema_version": 1,
 *   "case": "NAME", "image": "NAME.nii.gz",
 *   "annotator": "jd", "created": "2026-11-27T14:00:00Z", "modified": "...",  (ISO 8601)
 *   "discs": [ { "value": 3, "name": "C2-3", "voxel": [i, j, k],
 *                "source": "file" | "manual" | "derived" }, ... ],   ("name" informative)
 *   "segments": { "C2-3": { "label": "normal" | "hyperintense" | "uncertain" | "unset",
 *                           "annotator": "jd" | null, "time": "..." | null }, ... },
 *   "flags": { "review": "pass" | "fail" | "unset", "artifact": false, "reason": "" },
 *   "note": "",
 *   "centerline": [ [i, j, k], ... ]        (voxel coordinates, superior to inferior)
 * }
 * Reading fails with CS_IO_ERROR_VERSION for another schema_version, and with
 * CS_IO_ERROR_FORMAT (message naming the file and the field) for corrupt JSON, wrong
 * types, unknown label / source / review values, bad times and unknown segment names. */
#pragma once

#include <glib.h>

#include "io/cs-labels.h"

G_BEGIN_DECLS

#define CS_SIDECAR_SCHEMA_VERSION 1

typedef enum
{
  CS_SEGMENT_LABEL_UNSET,
  CS_SEGMENT_LABEL_NORMAL,
  CS_SEGMENT_LABEL_HYPERINTENSE,
  CS_SEGMENT_LABEL_UNCERTAIN,
} CsSegmentLabel;

typedef enum
{
  CS_REVIEW_UNSET,
  CS_REVIEW_PASS,
  CS_REVIEW_FAIL,
} CsReview;

typedef struct
{
  CsSegmentLabel label;
  char *annotator;   /* who set it, or NULL */
  char *time;        /* when (ISO 8601), or NULL */
} CsSegmentAnnotation;

/* A cord centerline point, voxel coordinates (i, j, k). */
typedef struct
{
  double voxel[3];
} CsCenterlinePoint;

typedef struct
{
  char *case_name;
  char *image_file;     /* the image's file name (no folder) */
  char *annotator;
  char *created;        /* ISO 8601 */
  char *modified;
  GArray *discs;        /* CsDisc, sorted by value, one per value */
  CsSegmentAnnotation segments[CS_N_SEGMENTS];   /* index = disc value - 3 */
  CsReview review;
  gboolean artifact;
  char *flag_reason;
  char *note;
  GArray *centerline;   /* CsCenterlinePoint, superior to inferior */
} CsSidecar;

/* An empty sidecar (created = modified = now, UTC). */
CsSidecar  *cs_sidecar_new              (const char *case_name, const char *image_file,
                                         const char *annotator);
void        cs_sidecar_free             (CsSidecar *sidecar);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsSidecar, cs_sidecar_free)

CsSidecar  *cs_sidecar_load             (const char *path, GError **error);
/* Sets modified to now, then writes PATH atomically: a temp file in the same folder,
 * fsync, the previous PATH kept as PATH.bak, the temp renamed into place, the folder
 * fsynced. On failure (read-only folder, full disk...) PATH is untouched and no temp
 * file is left; the error (CS_IO_ERROR_OPEN) names PATH and the reason. */
gboolean    cs_sidecar_save             (CsSidecar *sidecar, const char *path, GError **error);
/* PATH := TEXT atomically: a temp file in the same folder, fsync, (the previous PATH kept as
 * PATH.bak, a hard link, when BACKUP), rename, fsync of the folder. On failure PATH is
 * untouched, no temp file is left, and the error names the file and the reason. */
gboolean    cs_sidecar_write_text       (const char *path, const char *text, gboolean backup,
                                         GError **error);

/* The JSON text of a sidecar (pretty, ends in a newline). */
char       *cs_sidecar_to_json          (const CsSidecar *sidecar);
/* Parses DATA; SOURCE names it in errors. */
CsSidecar  *cs_sidecar_from_json        (const char *data, gssize length, const char *source,
                                         GError **error);

/* Sets segment (0..5) label, who and now. */
void        cs_sidecar_set_segment      (CsSidecar *sidecar, int segment, CsSegmentLabel label,
                                         const char *annotator);
/* Replaces or adds the disc of this value. */
void        cs_sidecar_set_disc         (CsSidecar *sidecar, const CsDisc *disc);

const char *cs_segment_label_to_string  (CsSegmentLabel label);
gboolean    cs_segment_label_from_string (const char *text, CsSegmentLabel *label);
const char *cs_disc_source_to_string    (CsDiscSource source);
gboolean    cs_disc_source_from_string  (const char *text, CsDiscSource *source);

/* Now as ISO 8601 UTC with seconds ("2026-11-27T14:05:09Z"). */
char       *cs_sidecar_now              (void);

G_END_DECLS
