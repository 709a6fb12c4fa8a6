// Emulation stand-in for CUDA's <mma.h>: cuda_emu.h (force-included) already provides nvcuda::wmma (mma_emu.h).
#pragma once
#include "../cuda_emu.h"
