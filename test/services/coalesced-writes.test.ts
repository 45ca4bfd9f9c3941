/**
 * coalesceWrites: the SSH packets ssh2 writes in one turn of the event loop reach the channel
 * beneath as one write (one CHANNEL_DATA, so one write by the relay's sshd and no Nagle wait on
 * the second), in order, with end() sending what is queued first.
 */
import {PassThrough, Writable} from 'node:stream';
import {describe, expect, test} from 'vitest';
import {coalesceWrites} from '../../source/services/coalesced-writes.js';

/** A writable that records each write it is handed. */
function recorder() {
	const writes: string[] = [];
	let ended = false;
	const stream = new Writable({
		write(chunk: Buffer, _encoding, callback) {
			writes.push(chunk.toString());
			callback();
		},
		final(callback) {
			ended = true;
			callback();
		},
	});
	return {stream, writes, ended: () => ended};
}

const turn = async () => new Promise((resolve) => setImmediate(resolve));

describe('coalesceWrites', () => {
	test('writes of one turn go down as one, in order', async () => {
		const {stream, writes} = recorder();
		coalesceWrites(stream);
		expect(stream.write(Buffer.from('NEWKEYS|'))).toBe(true);
		stream.write('SERVICE_REQUEST|');
		stream.write(Buffer.from('more'));
		expect(writes).toEqual([]);
		await turn();
		expect(writes).toEqual(['NEWKEYS|SERVICE_REQUEST|more']);
		stream.write('next turn');
		await turn();
		expect(writes).toEqual(['NEWKEYS|SERVICE_REQUEST|more', 'next turn']);
	});

	test('each write callback runs once its bytes are written', async () => {
		const {stream} = recorder();
		coalesceWrites(stream);
		const done: string[] = [];
		stream.write('a', () => done.push('a'));
		stream.write('b', 'utf8', () => done.push('b'));
		expect(done).toEqual([]);
		await turn();
		await turn();
		expect(done).toEqual(['a', 'b']);
	});

	test('end() sends what is queued before it ends', async () => {
		const {stream, writes, ended} = recorder();
		coalesceWrites(stream);
		stream.write('last packet');
		stream.end();
		await new Promise((resolve) => stream.once('finish', resolve));
		expect(writes).toEqual(['last packet']);
		expect(ended()).toBe(true);
	});

	test('reading is untouched, and a destroyed stream drops what is queued quietly', async () => {
		const channel = new PassThrough();
		coalesceWrites(channel);
		const read: string[] = [];
		channel.on('data', (chunk: Buffer) => read.push(chunk.toString()));
		channel.write('x');
		channel.write('y');
		await turn();
		expect(read).toEqual(['xy']);
		channel.write('lost');
		channel.destroy();
		await turn();
		expect(read).toEqual(['xy']);
	});
});
