// Emulation stand-in for CUDA's <cuda_fp16.h>: cuda_emu.h (force-included) already provides its contents.
#pragma once
#include "../cuda_emu.h"
