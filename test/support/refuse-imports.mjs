// Preloaded into a spawned server (NODE_OPTIONS=--import): the packages named in REFUSE_IMPORTS
// (comma-separated) fail to resolve, as if they were not installed. Shows what a server loads at
// start, and what a load that fails later does.
import { register } from 'node:module';

register('./refuse-imports-hooks.mjs', import.meta.url);
