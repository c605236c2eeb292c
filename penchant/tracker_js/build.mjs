// Minifies tracker.js into tracker.min.js with the pinned terser.
// `node build.mjs` writes the bundle; `node build.mjs --stdout` prints it (the
// staleness test compares that output with the committed file).
import { readFileSync, writeFileSync } from "node:fs";
import { minify } from "terser";

const here = new URL(".", import.meta.url);
const source = readFileSync(new URL("tracker.js", here), "utf8");
const { code } = await minify(source, {
  ecma: 2020,
  compress: { passes: 3, unsafe_arrows: true },
  mangle: true,
  format: { comments: false },
});
const bundle = code + "\n";
if (process.argv.includes("--stdout")) process.stdout.write(bundle);
else writeFileSync(new URL("tracker.min.js", here), bundle);
