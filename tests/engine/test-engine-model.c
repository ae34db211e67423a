#include "engine/cs-model.h"
int main (void) { return 0; }
