// Entry of the bundled metering service (metering.mjs on the image).
import { main } from './main.ts';

await main(process.argv.slice(2));
