import BackupCore
@testable import BackupInterop
import Foundation
import Testing
import TestSupport

/// Collects everything written to it.
final class AgeMemorySink: ByteSink {
    var bytes: [UInt8] = []
    func write(_ bytes: UnsafeRawBufferPointer) throws { self.bytes.append(contentsOf: bytes) }
}

/// Serves `bytes`, at most `readSizes[i % count]` bytes per call, to exercise short reads.
final class AgeMemorySource: ByteSource {
    private let bytes: [UInt8]
    private let readSizes: [Int]
    private var position = 0
    private var calls = 0

    init(_ bytes: [UInt8], readSizes: [Int] = [Int.max]) {
        self.bytes = bytes
        self.readSizes = readSizes
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let limit = readSizes[calls % readSizes.count]
        calls += 1
        let count = min(buffer.count, limit, bytes.count - position)
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[position..<(position + count)])) }
        position += count
        return count
    }
}

enum AgeTestUtil {
    /// Fast random test data (OpenSSL's CSPRNG; a Swift per-byte loop is slow in debug builds).
    static func random(_ count: Int) -> [UInt8] { count == 0 ? [] : AgeCrypto.randomBytes(count) }

    /// Encrypts `plaintext` through the sink, in writes of the given sizes (cycled).
    static func encrypt(_ plaintext: [UInt8], to recipients: [AgeRecipient], writeSizes: [Int] = [Int.max]) throws -> [UInt8] {
        let output = AgeMemorySink()
        let sink = try AgeEncryptingSink(recipients: recipients, next: output)
        var index = 0
        var call = 0
        try plaintext.withUnsafeBytes { all in
            while index < all.count {
                let count = min(writeSizes[call % writeSizes.count], all.count - index)
                try sink.write(UnsafeRawBufferPointer(rebasing: all[index..<(index + count)]))
                index += count
                call += 1
            }
        }
        try sink.finish()
        #expect(sink.plaintextCount == Int64(plaintext.count))
        #expect(sink.encryptedCount == Int64(output.bytes.count))
        return output.bytes
    }

    /// Decrypts everything, reading into buffers of the given sizes (cycled). `released` receives every
    /// plaintext byte returned before an error.
    static func decrypt(
        _ ciphertext: [UInt8], with identities: [AgeIdentity], sourceReads: [Int] = [Int.max], readSizes: [Int] = [100_000],
        released: ((ArraySlice<UInt8>) -> Void)? = nil
    ) throws -> [UInt8] {
        let source = try AgeDecryptingSource(identities: identities, source: AgeMemorySource(ciphertext, readSizes: sourceReads))
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: readSizes.max()!)
        var call = 0
        while true {
            let size = readSizes[call % readSizes.count]
            call += 1
            let n = try buffer.withUnsafeMutableBytes { try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[..<size])) }
            if n == 0 { break }
            out += buffer[..<n]
            released?(buffer[..<n])
        }
        #expect(source.plaintextCount == Int64(out.count))
        return out
    }

    /// Runs `body` and checks it throws a `ContingencyError.key` (exit 12) whose message contains `phrase`.
    @discardableResult
    static func expectKeyError(
        _ phrase: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
    ) -> ContingencyError? {
        do {
            try body()
            Issue.record("expected a key error containing '\(phrase)', got success", sourceLocation: sourceLocation)
            return nil
        } catch let error as ContingencyError {
            #expect(error.exitStatus == .keyError, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains(phrase), "'\(error.message)' lacks '\(phrase)'", sourceLocation: sourceLocation)
            return error
        } catch {
            Issue.record("expected a ContingencyError, got \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    static func write(_ bytes: [UInt8], to url: URL) throws { try Data(bytes).write(to: url) }
    static func read(_ url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }

    /// A Python script that runs a command on a pseudo-terminal and answers age's passphrase prompts
    /// ("Enter passphrase", "Confirm passphrase") with argv[1]: age 1.1.1 reads passphrases only from a terminal.
    static let passphraseDriver = """
        import os, pty, sys
        passphrase = sys.argv[1].encode()
        pid, fd = pty.fork()
        if pid == 0:
            os.execvp(sys.argv[2], sys.argv[2:])
        seen = b""
        answered = 0
        while True:
            try:
                data = os.read(fd, 1024)
            except OSError:
                break
            if not data:
                break
            seen += data
            prompts = seen.count(b"Enter passphrase") + seen.count(b"Confirm passphrase")
            while answered < prompts:
                os.write(fd, passphrase + b"\\n")
                answered += 1
        _, status = os.waitpid(pid, 0)
        sys.stderr.write(seen.decode(errors="replace"))
        sys.exit(os.waitstatus_to_exitcode(status))
        """

    /// Runs `age arguments…` with `passphrase` typed at its prompts; returns the result.
    static func runAgeWithPassphrase(_ passphrase: String, _ arguments: [String], in directory: TemporaryDirectory) async throws -> ProcessResult {
        let script = directory.appending("drive-passphrase.py")
        if !FileManager.default.fileExists(atPath: script.path) {
            try Data(passphraseDriver.utf8).write(to: script)
        }
        return try await ProcessRunner.run("python3", [script.path, passphrase, "age"] + arguments, timeout: .seconds(120))
    }
}
