/* cli-phantom.c: `cordscope-cli phantom`, synthetic cases with known lesions. */
#include "cs-config.h"
#include "cs-cli.h"
#include "io/cs-phantom.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
  "Usage: cordscope-cli phantom --out DIR --count N --seed S [OPTIONS...]\n"
  "\n"
  "Makes synthetic sagittal T2w cervical-spine cases with known lesions. Per case NAME\n"
  "(phantom-0000, phantom-0001, ...): NAME.nii.gz (image, int16), NAME_seg.nii.gz\n"
  "(cord mask as an automatic segmenter gives it), NAME_labels-disc.nii.gz (one voxel\n"
  "per disc, 3..8 = C2-3..C7-T1, sometimes 2 and 9 too), NAME_lesion.nii.gz (truth)\n"
  "and NAME_truth.json (hyperintense segments, lesions, confounders, seed).\n"
  "The same seed and options give the same bytes; a case does not depend on --count.\n"
  "\n"
  "Options:\n"
  "  --out DIR           folder to write into (created if missing)\n"
  "  --count N           number of cases (default 10)\n"
  "  --first I           index of the first case (default 0)\n"
  "  --seed S            series seed, 0..2^63-1 (default 1)\n"
  "  --lesion-rate P     fraction of cases with lesions, 0..1 (default 0.4)\n"
  "  --size SIZE         'default' (0.5-1 mm, 9-15 slices) or 'small' (quick, coarse)\n"
  "  --jobs N            threads (default: one per processor)\n"
  "  --no-CONFOUNDER     turn one confounder off; CONFOUNDER is gibbs, seg-error,\n"
  "                      flow, wander, gm-stripe, enlargement or drift\n"
  "  --no-confounders    turn them all off\n"
  "  --quiet             print nothing on success\n";

static gboolean
parse_uint (const char *text, guint64 max, guint64 *out)
{
  char *end = NULL;
  if (text == NULL || *text == '\0' || *text == '-')
    return FALSE;
  guint64 v = g_ascii_strtoull (text, &end, 10);
  if (*end != '\0' || v > max)
    return FALSE;
  *out = v;
  return TRUE;
}

int
cs_cli_phantom (int argc, char **argv)
{
  CsPhantomOptions options;
  cs_phantom_options_init (&options);
  const char *out = NULL;
  guint64 count = 10, first = 0, jobs = 0;
  gboolean quiet = FALSE;

  for (int i = 1; i < argc; i++)
    {
      const char *arg = argv[i];
      const char *value = i + 1 < argc ? argv[i + 1] : NULL;
      if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0)
        {
          fputs (usage, stdout);
          return 0;
        }
      else if (strcmp (arg, "--quiet") == 0)
        quiet = TRUE;
      else if (strcmp (arg, "--no-confounders") == 0)
        options.confounders = 0;
      else if (g_str_has_prefix (arg, "--no-"))
        {
          CsPhantomConfounder c = cs_phantom_confounder_from_name (arg + 5);
          if (c == 0)
            return cs_cli_fail ("phantom", "unknown confounder '%s' (see --help)", arg + 5);
          options.confounders &= ~(guint) c;
        }
      else if (value == NULL)
        return cs_cli_fail ("phantom", "unknown option or missing value: '%s' (see --help)",
                            arg);
      else
        {
          i++;
          if (strcmp (arg, "--out") == 0)
            out = value;
          else if (strcmp (arg, "--count") == 0)
            {
              if (!parse_uint (value, 1000000, &count))
                return cs_cli_fail ("phantom", "--count: '%s' is not a count", value);
            }
          else if (strcmp (arg, "--first") == 0)
            {
              if (!parse_uint (value, 1000000, &first))
                return cs_cli_fail ("phantom", "--first: '%s' is not an index", value);
            }
          else if (strcmp (arg, "--seed") == 0)
            {
              if (!parse_uint (value, G_MAXINT64, &options.seed))
                return cs_cli_fail ("phantom", "--seed: '%s' is not in 0..2^63-1", value);
            }
          else if (strcmp (arg, "--jobs") == 0)
            {
              if (!parse_uint (value, 256, &jobs))
                return cs_cli_fail ("phantom", "--jobs: '%s' is not a thread count", value);
            }
          else if (strcmp (arg, "--lesion-rate") == 0)
            {
              char *end = NULL;
              options.lesion_rate = g_ascii_strtod (value, &end);
              if (*end != '\0' || !(options.lesion_rate >= 0 && options.lesion_rate <= 1))
                return cs_cli_fail ("phantom", "--lesion-rate: '%s' is not in 0..1", value);
            }
          else if (strcmp (arg, "--size") == 0)
            {
              if (strcmp (value, "small") == 0)
                options.size = CS_PHANTOM_SIZE_SMALL;
              else if (strcmp (value, "default") == 0)
                options.size = CS_PHANTOM_SIZE_DEFAULT;
              else
                return cs_cli_fail ("phantom", "--size: '%s' is not 'default' or 'small'", value);
            }
          else
            return cs_cli_fail ("phantom", "unknown option '%s' (see --help)", arg);
        }
    }
  if (out == NULL)
    return cs_cli_fail ("phantom", "--out DIR is required (see --help)");

  gint64 start = g_get_monotonic_time ();
  g_autoptr (GError) error = NULL;
  if (!cs_phantom_generate (&options, out, (guint) first, (guint) count, (guint) jobs, &error))
    return cs_cli_fail ("phantom", "%s", error->message);
  double seconds = (g_get_monotonic_time () - start) / 1e6;
  if (!quiet)
    printf ("%u cases in %s, %.2f s, %.1f cases/s\n", (guint) count, out, seconds,
            seconds > 0 ? count / seconds : 0.0);
  return 0;
}
