#!/usr/bin/env -S node --max-semi-space-size=2 --v8-pool-size=1 --no-memory-reducer
// A small young generation: the dashboard allocates little per frame, and the default (16 MB
// semi-spaces) alone would take a third of its memory. One V8 worker thread instead of one a
// core: each worker's malloc arena cost ~13 MB of RSS (bench idle row: 126 -> 113 MB, same CPU).
// No memory reducer: an idle dashboard allocates so little that V8 takes it for idle and runs a
// full mark-compact every ~7 s to shrink a heap that does not grow (bench idle row, quiet machine:
// 2.9-3.3 % of a core with it, 1.9-2.4 % without; RSS 91-94 vs 94-97 MB).
// gpujup.cjs is source/main.tsx and what it loads, bundled by the build (rolldown.config.js);
// the dashboard's bundle has React and Ink in their production builds whatever NODE_ENV says
// (their development builds cost several times the CPU and memory of an idle dashboard).
import {createRequire} from 'node:module';

createRequire(import.meta.url)('./gpujup.cjs');
