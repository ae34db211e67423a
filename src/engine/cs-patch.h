/* cs-patch.h: the state of one patch of a batch item, shared by the network (cs-model.h)
 * and the masking schedules (cs-masking.h). */
#pragma once

typedef enum
{
  CS_PATCH_VISIBLE = 0,  /* an encoder token */
  CS_PATCH_MASKED  = 1,  /* hidden: the decoder reconstructs it, the loss scores it */
  CS_PATCH_DROPPED = 2,  /* context beyond the margin: in neither encoder nor decoder */
} CsPatchState;
