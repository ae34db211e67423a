/* cs-model-config.c: the model configuration as data: presets, validation, JSON. */
#include "cs-model.h"

#include <json-glib/json-glib.h>
#include <math.h>

/* Presets. Head dim 8 everywhere (the attention kernel's fast path). Costs on this
 * 2-core machine are in the engine report (issue 3); "small" is the CPU default. */
static const struct
{
  const char   *name;
  CsModelConfig config;
} presets[] = {
  /* U2AD's EdgeMAE as published: the parity and speed reference */
  { "reference", { 256, 8, 1, 128, 12, 16, 64, 8, 8, 4.0f, 0.75f, -1 } },
  /* for GPUs: twice the width */
  { "large",     { 256, 8, 1, 256, 12, 32, 128, 8, 16, 4.0f, 0.75f, -1 } },
  /* CPU default: narrower, shallower, context within 2 patches (16 px) of the cord */
  { "small",     { 256, 8, 1, 80, 4, 10, 48, 2, 6, 4.0f, 0.75f, 2 } },
  /* quick CPU runs and tests: context within 1 patch of the cord */
  { "tiny",      { 256, 8, 1, 64, 4, 8, 32, 2, 4, 4.0f, 0.75f, 1 } },
};

static const char *const preset_names[] = { "reference", "large", "small", "tiny", NULL };

const char *const *
cs_model_config_preset_names (void)
{
  return preset_names;
}

const char *
cs_model_config_default_cpu (void)
{
  return "small";
}

gboolean
cs_model_config_preset (const char *name, CsModelConfig *config, GError **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (presets); i++)
    if (g_strcmp0 (name, presets[i].name) == 0)
      {
        *config = presets[i].config;
        return TRUE;
      }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
               "unknown model preset “%s” (known: reference, large, small, tiny)",
               name ? name : "(null)");
  return FALSE;
}

int
cs_model_config_grid (const CsModelConfig *c)
{
  return c->img_size / c->patch;
}

int
cs_model_config_n_patches (const CsModelConfig *c)
{
  int g = cs_model_config_grid (c);
  return g * g;
}

static int
hidden_dim (int dim, float ratio)
{
  return (int) (dim * ratio);
}

gboolean
cs_model_config_validate (const CsModelConfig *c, GError **error)
{
#define BAD(...) \
  do { g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, __VA_ARGS__); \
       return FALSE; } while (0)
  if (c->patch < 1 || c->patch > 64)
    BAD ("model config: patch %d is out of range 1..64", c->patch);
  if (c->img_size < c->patch || c->img_size > 4096 || c->img_size % c->patch != 0)
    BAD ("model config: img_size %d is not a multiple of patch %d (up to 4096)",
         c->img_size, c->patch);
  if (c->in_chans != 1)
    BAD ("model config: in_chans %d is not supported (only 1)", c->in_chans);
  if (c->enc_dim < 4 || c->enc_heads < 1 || c->enc_dim % c->enc_heads != 0
      || c->enc_dim % 4 != 0)
    BAD ("model config: enc_dim %d must be a multiple of 4 and of enc_heads %d",
         c->enc_dim, c->enc_heads);
  if (c->dec_dim < 4 || c->dec_heads < 1 || c->dec_dim % c->dec_heads != 0
      || c->dec_dim % 4 != 0)
    BAD ("model config: dec_dim %d must be a multiple of 4 and of dec_heads %d",
         c->dec_dim, c->dec_heads);
  if (c->enc_depth < 1 || c->enc_depth > 64 || c->dec_depth < 1 || c->dec_depth > 64)
    BAD ("model config: enc_depth %d / dec_depth %d out of range 1..64", c->enc_depth,
         c->dec_depth);
  if (!(c->mlp_ratio > 0.0f && c->mlp_ratio <= 16.0f)
      || hidden_dim (c->enc_dim, c->mlp_ratio) < 1 || hidden_dim (c->dec_dim, c->mlp_ratio) < 1)
    BAD ("model config: mlp_ratio %g out of range (0, 16]", c->mlp_ratio);
  if (!(c->mask_ratio >= 0.0f && c->mask_ratio < 1.0f))
    BAD ("model config: mask_ratio %g out of range [0, 1)", c->mask_ratio);
  if (c->context_margin < -1)
    BAD ("model config: context_margin %d (use -1 to keep all context)", c->context_margin);
  return TRUE;
#undef BAD
}

gboolean
cs_model_config_equal (const CsModelConfig *a, const CsModelConfig *b)
{
  return a->img_size == b->img_size && a->patch == b->patch && a->in_chans == b->in_chans
         && a->enc_dim == b->enc_dim && a->enc_depth == b->enc_depth
         && a->enc_heads == b->enc_heads && a->dec_dim == b->dec_dim
         && a->dec_depth == b->dec_depth && a->dec_heads == b->dec_heads
         && a->mlp_ratio == b->mlp_ratio && a->mask_ratio == b->mask_ratio
         && a->context_margin == b->context_margin;
}

static size_t
block_params (int C, int H)
{
  return 2 * (size_t) C + 3 * (size_t) C * C + 3 * C + (size_t) C * C + C + 2 * C
         + (size_t) H * C + H + (size_t) C * H + C;
}

size_t
cs_model_config_n_params (const CsModelConfig *c)
{
  size_t E = c->enc_dim, D = c->dec_dim, PP = (size_t) c->patch * c->patch;
  size_t n = E + D + E * PP + E;

  n += c->enc_depth * block_params (c->enc_dim, hidden_dim (c->enc_dim, c->mlp_ratio));
  n += 2 * E + D * E + D;
  n += c->dec_depth * block_params (c->dec_dim, hidden_dim (c->dec_dim, c->mlp_ratio));
  n += 2 * (2 * D + PP * D + PP);
  return n;
}

static double
block_flops (double T, double C, double H)
{
  return 2.0 * T * (3 * C * C + C * C + 2 * C * H) + 2.0 * 2.0 * T * T * C;
}

double
cs_model_config_forward_flops (const CsModelConfig *c, int enc_tokens, int dec_tokens)
{
  double E = c->enc_dim, D = c->dec_dim, PP = (double) c->patch * c->patch;
  double f = 2.0 * (enc_tokens - 1) * PP * E;

  f += c->enc_depth * block_flops (enc_tokens, E, hidden_dim (c->enc_dim, c->mlp_ratio));
  f += 2.0 * enc_tokens * E * D;
  f += c->dec_depth * block_flops (dec_tokens, D, hidden_dim (c->dec_dim, c->mlp_ratio));
  f += 2.0 * 2.0 * dec_tokens * D * PP;
  return f;
}

char *
cs_model_config_to_json (const CsModelConfig *c)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
#define INT(k) json_builder_set_member_name (b, #k); json_builder_add_int_value (b, c->k)
  INT (img_size); INT (patch); INT (in_chans);
  INT (enc_dim); INT (enc_depth); INT (enc_heads);
  INT (dec_dim); INT (dec_depth); INT (dec_heads);
#undef INT
  /* floats printed through double: 4.0 and 0.75 are exact */
  json_builder_set_member_name (b, "mlp_ratio");
  json_builder_add_double_value (b, c->mlp_ratio);
  json_builder_set_member_name (b, "mask_ratio");
  json_builder_add_double_value (b, c->mask_ratio);
  json_builder_set_member_name (b, "context_margin");
  json_builder_add_int_value (b, c->context_margin);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

static const char *const config_keys[] = {
  "img_size", "patch", "in_chans", "enc_dim", "enc_depth", "enc_heads", "dec_dim",
  "dec_depth", "dec_heads", "mlp_ratio", "mask_ratio", "context_margin",
};

gboolean
cs_model_config_from_json (const char *json, CsModelConfig *config, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) local = NULL;
  JsonObject *obj;
  CsModelConfig c = { 0 };
  double values[G_N_ELEMENTS (config_keys)];
  g_autoptr (GList) members = NULL;

  if (json == NULL || !json_parser_load_from_data (parser, json, -1, &local))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "model config: not valid JSON: %s", local ? local->message : "empty");
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "model config: the JSON is not an object");
      return FALSE;
    }
  obj = json_node_get_object (json_parser_get_root (parser));
  members = json_object_get_members (obj);
  for (GList *l = members; l != NULL; l = l->next)
    {
      gboolean known = FALSE;
      for (guint i = 0; i < G_N_ELEMENTS (config_keys); i++)
        known |= g_str_equal (l->data, config_keys[i]);
      if (!known)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "model config: unknown key “%s”", (const char *) l->data);
          return FALSE;
        }
    }
  for (guint i = 0; i < G_N_ELEMENTS (config_keys); i++)
    {
      JsonNode *node = json_object_get_member (obj, config_keys[i]);
      GType type;

      if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "model config: key “%s” is missing or not a number", config_keys[i]);
          return FALSE;
        }
      type = json_node_get_value_type (node);
      if (type != G_TYPE_INT64 && type != G_TYPE_DOUBLE)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "model config: key “%s” is not a number", config_keys[i]);
          return FALSE;
        }
      values[i] = type == G_TYPE_INT64 ? (double) json_node_get_int (node)
                                       : json_node_get_double (node);
      /* all keys but the two ratios are integers */
      if (i != 9 && i != 10 && (values[i] != floor (values[i]) || fabs (values[i]) > 1e6))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "model config: key “%s” is not an integer", config_keys[i]);
          return FALSE;
        }
    }
  c.img_size = (int) values[0];
  c.patch = (int) values[1];
  c.in_chans = (int) values[2];
  c.enc_dim = (int) values[3];
  c.enc_depth = (int) values[4];
  c.enc_heads = (int) values[5];
  c.dec_dim = (int) values[6];
  c.dec_depth = (int) values[7];
  c.dec_heads = (int) values[8];
  c.mlp_ratio = (float) values[9];
  c.mask_ratio = (float) values[10];
  c.context_margin = (int) values[11];
  if (!cs_model_config_validate (&c, error))
    return FALSE;
  *config = c;
  return TRUE;
}
