/** Once per test run: say which nvidia-smi samples the tests replay (see helpers/nvidia-smi-samples.ts). */
import {samples} from './helpers/nvidia-smi-samples.js';

export default function setup(): void {
	console.log(`nvidia-smi samples: ${samples.label}`);
}
