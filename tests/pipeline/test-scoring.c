/* test-scoring.c: the cord interior that detection scores (cs_cord_interior) and the patient
 * score over the labelled segments, against cases worked out by hand. */
#include <math.h>
#include <string.h>

#include <glib.h>

#include "engine/cs-detect.h"

#define H 6
#define W 7

/* A cord 5 px wide narrowing to 1 px, ending in row 4; row 5 is empty. */
static const char *const cord_rows[H] = {
  ".#####.",
  ".#####.",
  ".#####.",
  "..###..",
  "...#...",
  ".......",
};

static void
mask_from_rows (const char *const *rows, guint8 *mask)
{
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      mask[y * W + x] = rows[y][x] == '#';
}

static void
assert_mask (const guint8 *got, const char *const *want)
{
  for (int y = 0; y < H; y++)
    {
      char row[W + 1];
      for (int x = 0; x < W; x++)
        row[x] = got[y * W + x] ? '#' : '.';
      row[W] = '\0';
      g_assert_cmpstr (row, ==, want[y]);
    }
}

static void
test_inset_zero_copies (void)
{
  guint8 cord[H * W], interior[H * W];
  mask_from_rows (cord_rows, cord);
  memset (interior, 7, sizeof interior);
  g_assert_cmpuint (cs_cord_interior (cord, H, W, 0, interior), ==, 19);
  assert_mask (interior, cord_rows);
}

/* Radius 1 is the 4-neighbourhood. Row 0 keeps 3 px (the grid's top is not an edge); row 3
 * keeps its centre (row 4 below it is cord); row 4 has no interior and keeps its cord px. */
static void
test_inset_one (void)
{
  static const char *const want[H] = {
    "..###..",
    "..###..",
    "..###..",
    "...#...",
    "...#...",
    ".......",
  };
  guint8 cord[H * W], interior[H * W];
  mask_from_rows (cord_rows, cord);
  g_assert_cmpuint (cs_cord_interior (cord, H, W, 1, interior), ==, 11);
  assert_mask (interior, want);
}

/* Radius 2 adds the diagonals and the 2-px axial offsets: only the centre column of rows
 * 0-2 survives; rows 3 and 4 lose every px and fall back to their cord px. */
static void
test_inset_two (void)
{
  static const char *const want[H] = {
    "...#...",
    "...#...",
    "...#...",
    "..###..",
    "...#...",
    ".......",
  };
  guint8 cord[H * W], interior[H * W];
  mask_from_rows (cord_rows, cord);
  g_assert_cmpuint (cs_cord_interior (cord, H, W, 2, interior), ==, 7);
  assert_mask (interior, want);
}

/* The curve over the interior ignores a bright rim: a map that is 1 on the cord's edge
 * columns and 0 inside gives curve 0 on rows that have an interior. */
static void
test_curve_ignores_rim (void)
{
  guint8 cord[H * W], interior[H * W];
  float map[H * W] = { 0 }, curve[H];
  mask_from_rows (cord_rows, cord);
  for (int y = 0; y < 3; y++)
    map[y * W + 1] = map[y * W + 5] = 1.0f;
  cs_cord_interior (cord, H, W, 1, interior);
  cs_anomaly_curve (map, interior, H, W, 0, curve);
  for (int y = 0; y < H; y++)
    g_assert_cmpfloat (curve[y], ==, 0.0f);
  /* Over the whole cord the same map scores 2 / 5 on rows 0-2. */
  cs_anomaly_curve (map, cord, H, W, 0, curve);
  g_assert_cmpfloat_with_epsilon (curve[0], 0.4f, 1e-6);
}

/* Rows 2-6 are in present segments, rows 7-8 in an absent one, rows 0, 1 and 9 in none. */
static void
test_patient_over_segments (void)
{
  const float curve[10] = { 9, 1, 2, 3, 4, 5, 6, 7, 8, 0 };
  CsSegmentSpan spans[3] = {
    { .row_start = 2, .row_end = 4, .present = TRUE },
    { .row_start = 5, .row_end = 6, .present = TRUE },
    { .row_start = 7, .row_end = 8, .present = FALSE },
  };
  g_assert_cmpfloat (cs_patient_score (curve, 10), ==, 9.0);
  g_assert_cmpfloat (cs_patient_score_segments (curve, 10, spans, 3), ==, 6.0);
  spans[1].present = FALSE;
  g_assert_cmpfloat (cs_patient_score_segments (curve, 10, spans, 3), ==, 4.0);
  spans[0].present = FALSE;
  g_assert_true (isnan (cs_patient_score_segments (curve, 10, spans, 3)));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/scoring/cord-interior/inset-0", test_inset_zero_copies);
  g_test_add_func ("/scoring/cord-interior/inset-1", test_inset_one);
  g_test_add_func ("/scoring/cord-interior/inset-2", test_inset_two);
  g_test_add_func ("/scoring/cord-interior/curve", test_curve_ignores_rim);
  g_test_add_func ("/scoring/patient-over-segments", test_patient_over_segments);
  return g_test_run ();
}
