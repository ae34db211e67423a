/* placeholder: filled in by its owner */
#include "cs-cli.h"

int
cs_cli_pretrain (int argc, char **argv)
{
  return cs_cli_fail ("pretrain", "not built yet");
}
