// A docconv client in Node.js: submit a document in chunks, follow the job
// live with WatchJob, download the result with ReadResult (resuming from an
// offset), and read a refusal's google.rpc.BadRequest field by field.
//
// The API is loaded from the repository's proto/ at run time with
// @grpc/proto-loader, so there is no generated code to keep:
//
//     npm ci --prefix examples/node
//     node examples/node/client.js --server 127.0.0.1:50051 report.docx report.pdf
//
// Exit codes: 0 when the job succeeded and its result is saved, 1 when the
// job failed or was cancelled, 2 when a call was refused or failed.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_DIR = process.env.DOCCONV_PROTO_DIR || path.join(__dirname, '..', '..', 'proto');
// The API takes data chunks of at most 1 MiB.
const CHUNK = 1024 * 1024;
// Each ReadResult call reads a window of this size: a download that stops
// loses at most the window in flight, and the next call starts where the
// file on disk ends.
const WINDOW = 64 * 1024;

const definition = protoLoader.loadSync('docconv/v1/converter.proto', {
  includeDirs: [PROTO_DIR],
  // Fields by their proto names (file_name), enums as their names
  // ("JOB_STATE_QUEUED"), 64-bit numbers as JS numbers
  // (sizes stay far below 2^53), unset optional fields absent.
  keepCase: true,
  enums: String,
  longs: Number,
  defaults: true,
  oneofs: true,
});
const { Converter } = grpc.loadPackageDefinition(definition).docconv.v1;

// google.rpc.Status and BadRequest, the part of googleapis this client
// reads: the status travels in the `grpc-status-details-bin` trailer.
const rpc = protobuf.parse(`
  syntax = "proto3";
  package google.rpc;
  message Any { string type_url = 1; bytes value = 2; }
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message BadRequest {
    message FieldViolation { string field = 1; string description = 2; }
    repeated FieldViolation field_violations = 1;
  }
`, { keepCase: true }).root;

function describe(job) {
  const state = job.state.replace('JOB_STATE_', '');
  if (job.state === 'JOB_STATE_QUEUED') return `${state} position ${job.queue_position}`;
  if (job.state === 'JOB_STATE_RUNNING' && job.progress) {
    return `${state} ${job.progress.stage.replace('STAGE_', '')} ${job.progress.percent}%`;
  }
  if (job.error) return `${state}: ${job.error.message}`;
  return state;
}

/** Streams the header, then the file chunk by chunk; resolves to the job. */
function submit(client, metadata, file, options) {
  return new Promise((resolve, reject) => {
    const call = client.Submit(metadata, (error, job) => (error ? reject(error) : resolve(job)));
    call.write({
      header: { file_name: path.basename(file), size_bytes: fs.statSync(file).size, options },
    });
    const stream = fs.createReadStream(file, { highWaterMark: CHUNK });
    // A readable stream pauses while the call's buffer is full.
    stream.on('data', (chunk) => {
      if (!call.write({ data: chunk })) {
        stream.pause();
        call.once('drain', () => stream.resume());
      }
    });
    stream.on('end', () => call.end());
    // A file that cannot be read cancels the call: no job from half a file.
    stream.on('error', (error) => {
      call.cancel();
      reject(error);
    });
  });
}

/** Prints every state until the job ends; resolves to the last. */
function watch(client, metadata, id) {
  return new Promise((resolve, reject) => {
    let last = null;
    const call = client.WatchJob({ id }, metadata);
    call.on('data', (event) => {
      if (event.job) {
        // The other events are heartbeats.
        console.log(describe(event.job));
        last = event.job;
      }
    });
    call.on('error', reject);
    call.on('end', () => resolve(last));
  });
}

/** One ReadResult window from `offset`, appended to `fd`; resolves to the new offset. */
function readWindow(client, metadata, id, fd, offset) {
  return new Promise((resolve, reject) => {
    const call = client.ReadResult({ id, offset, limit: WINDOW }, metadata);
    call.on('data', (chunk) => {
      if (chunk.offset !== offset) {
        call.cancel();
        reject(new Error(`chunk at ${chunk.offset}, expected ${offset}`));
        return;
      }
      fs.writeSync(fd, chunk.data);
      offset += chunk.data.length;
    });
    call.on('error', reject);
    call.on('end', () => resolve(offset));
  });
}

/** Writes the result to `out` through `out.<id>.part`, resuming from that
 * file's end if an earlier download stopped. */
async function download(client, metadata, job, out) {
  const size = job.output.size_bytes;
  const partial = `${out}.${job.id}.part`;
  let offset = fs.existsSync(partial) ? fs.statSync(partial).size : 0;
  if (offset > 0) console.log(`resuming at offset ${offset}`);
  const fd = fs.openSync(partial, 'a');
  try {
    while (offset < size) offset = await readWindow(client, metadata, job.id, fd, offset);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const digest = crypto.createHash('sha256').update(fs.readFileSync(partial)).digest('hex');
  if (digest !== job.output.sha256) {
    fs.unlinkSync(partial);
    throw new Error("the download does not match the job's SHA-256; run again");
  }
  fs.renameSync(partial, out);
  console.log(`saved ${out} (${size} bytes, ${job.output.page_count} pages)`);
}

/** A call's error; for INVALID_ARGUMENT, each field the service named. */
function printRefusal(error) {
  console.error(`refused: ${grpc.status[error.code]}: ${error.details}`);
  const [bytes] = error.metadata ? error.metadata.get('grpc-status-details-bin') : [];
  if (!bytes) return;
  const status = rpc.lookupType('google.rpc.Status').decode(bytes);
  for (const detail of status.details) {
    if (detail.type_url === 'type.googleapis.com/google.rpc.BadRequest') {
      const badRequest = rpc.lookupType('google.rpc.BadRequest').decode(detail.value);
      for (const violation of badRequest.field_violations) {
        console.error(`  ${violation.field}: ${violation.description}`);
      }
    }
  }
}

async function main() {
  const { values, positionals } = parseArgs({
    options: {
      server: { type: 'string', default: '127.0.0.1:50051' },
      'page-ranges': { type: 'string', default: '' },
      job: { type: 'string' },
    },
    allowPositionals: true,
  });
  const out = positionals[positionals.length - 1];
  const client = new Converter(values.server, grpc.credentials.createInsecure());
  // A service with tokens wants one on every call.
  const metadata = new grpc.Metadata();
  if (process.env.DOCCONV_TOKEN) metadata.set('authorization', `Bearer ${process.env.DOCCONV_TOKEN}`);
  try {
    let job;
    if (values.job) {
      job = await new Promise((resolve, reject) =>
        client.GetJob({ id: values.job }, metadata, (error, found) => (error ? reject(error) : resolve(found))),
      );
    } else {
      const options = values['page-ranges'] ? { pdf: { page_ranges: values['page-ranges'] } } : {};
      job = await submit(client, metadata, positionals[0], options);
      console.log(`submitted ${job.id}`);
      job = await watch(client, metadata, job.id);
    }
    if (!job || job.state !== 'JOB_STATE_SUCCEEDED') return 1;
    await download(client, metadata, job, out);
    return 0;
  } catch (error) {
    if (error.code === undefined) throw error;
    printRefusal(error);
    return 2;
  } finally {
    client.close();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(error.message);
    process.exitCode = 2;
  },
);
