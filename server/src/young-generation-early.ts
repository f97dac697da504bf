/**
 * The default cap on V8's young generation, set before anything else of the CLI loads (cli.ts
 * imports this module first): loading the gateway's modules alone would grow the young generation
 * to 16 MiB, past the default cap, and V8 would keep it. `sluice serve` sets the configured cap
 * once it has read its options (`--young-generation`, SLUICE_YOUNG_GENERATION; 0 removes it).
 * Nothing here may import more than node: modules.
 */
import { capYoungGeneration, DEFAULT_YOUNG_GENERATION } from './young-generation.js';

capYoungGeneration(DEFAULT_YOUNG_GENERATION);
