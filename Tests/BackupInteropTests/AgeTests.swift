import BackupCore
@testable import BackupInterop
import Foundation
import Testing
import TestSupport

/// Keys, recipients and identities: parsing, encoding, and agreement with age-keygen.
@Suite("age keys")
struct AgeKeyTests {
    @Test func specExampleKeysAgree() throws {
        // The example pair of the age specification: the identity is 32 bytes of 0x42.
        let identity = try AgeIdentity(parsing: "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
        #expect(identity.recipient?.encoded == "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj")
        #expect(identity.encoded == "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
        guard case .x25519(let secret, _) = identity.kind else { Issue.record("not X25519"); return }
        #expect(secret == [UInt8](repeating: 0x42, count: 32))
    }

    @Test func generatedIdentityRoundTrips() throws {
        let identity = AgeIdentity.generate()
        let encoded = try #require(identity.encoded)
        #expect(encoded.hasPrefix("AGE-SECRET-KEY-1") && encoded.count == 74)
        let parsed = try AgeIdentity(parsing: encoded)
        #expect(parsed.encoded == encoded)
        #expect(parsed.recipient == identity.recipient)
        let recipient = try #require(identity.recipient?.encoded)
        #expect(recipient.hasPrefix("age1") && recipient.count == 62)
        #expect(try AgeRecipient(parsing: recipient) == identity.recipient)
        #expect(AgeIdentity.generate().encoded != encoded)
    }

    @Test func agreesWithAgeKeygen() async throws {
        let folder = try TemporaryDirectory(prefix: "age-keygen")
        let keyFile = folder.appending("key.txt")
        _ = try await ProcessRunner.run("age-keygen", ["-o", keyFile.path], requireSuccess: true)
        let text = try String(contentsOf: keyFile, encoding: .utf8)
        #expect(text.contains("# public key: "))
        let identities = try AgeIdentity.parseFile(text)
        #expect(identities.count == 1)
        let publicKey = try await ProcessRunner.run("age-keygen", ["-y", keyFile.path], requireSuccess: true)
        #expect(identities[0].recipient?.encoded == publicKey.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(text.contains(try #require(identities[0].encoded)))
    }

    @Test func identityFileFormat() throws {
        let a = AgeIdentity.generate(), b = AgeIdentity.generate()
        let text = "# created: 2025-01-15T14:30:00Z\n# public key: \(a.recipient!)\n\(a.encoded!)\n\n  \n# second\n\(b.encoded!)\r\n"
        let parsed = try AgeIdentity.parseFile(text)
        #expect(parsed.map(\.encoded) == [a.encoded, b.encoded])

        let bad = "# key\n\(a.encoded!)\nAGE-SECRET-KEY-1NOTAKEY\n"
        let error = try #require(throws: ContingencyError.self) { try AgeIdentity.parseFile(bad) }
        #expect(error.isConfiguration)
        #expect(error.message.contains("line 3"))
        #expect(!error.description.contains("NOTAKEY") && !error.description.contains(a.encoded!))
        #expect(throws: ContingencyError.self) { try AgeIdentity.parseFile("# only a comment\n") }
    }

    @Test func recipientListFormat() throws {
        let keys = (0..<4).map { _ in AgeIdentity.generate().recipient!.encoded! }
        let text = """
            # backup operators
            \(keys[0]), \(keys[1])
              \(keys[2])\t\(keys[0])   # duplicate, kept once

            \(keys[3]),
            """
        let parsed = try AgeRecipient.parseList(text)
        #expect(parsed.map(\.encoded) == [keys[0], keys[1], keys[2], keys[3]])
        #expect(try AgeRecipient.parseList(keys[1]).map(\.description) == [keys[1]])

        let empty = try #require(throws: ContingencyError.self) { try AgeRecipient.parseList("# nobody\n\n") }
        #expect(empty.isConfiguration)
        // One character changed (to another one: a key may end in any of them) breaks bech32's checksum.
        let changed = keys[1].dropLast() + (keys[1].last == "x" ? "y" : "x")
        let wrong = try #require(throws: ContingencyError.self) { try AgeRecipient.parseList("\(keys[0])\n\(changed)") }
        #expect(wrong.isConfiguration && wrong.message.contains("line 2"))
    }

    @Test func malformedKeysAreConfigurationErrors() throws {
        let identity = AgeIdentity.generate()
        let recipient = identity.recipient!.encoded!
        let secret = identity.encoded!
        let badRecipients = [
            "", "age1", recipient.uppercased(), String(recipient.dropLast()) + (recipient.last == "q" ? "p" : "q"),
            "age1" + String(recipient.dropFirst(4)).uppercased(), // mixed case
            Bech32.encode(hrp: "age", data: [UInt8](repeating: 1, count: 31)), // wrong length
            Bech32.encode(hrp: "agx", data: [UInt8](repeating: 1, count: 32)), // wrong type
            "age1pq1abcdef",
        ]
        for text in badRecipients {
            let error = try #require(throws: ContingencyError.self, "\(text)") { try AgeRecipient(parsing: text) }
            #expect(error.isConfiguration)
        }
        // A secret key pasted as a recipient is refused without being echoed.
        let pasted = try #require(throws: ContingencyError.self) { try AgeRecipient.parseList("\(recipient)\n\(secret)") }
        #expect(pasted.isConfiguration && !pasted.description.contains(secret) && !pasted.description.contains(String(secret.dropFirst(16))))
        // Identities: lower case, bad checksum, a recipient, wrong HRP. Never echoed.
        let lowered = secret.lowercased()
        for text in [lowered, String(secret.dropLast()) + (secret.last == "Q" ? "P" : "Q"), recipient, "AGE-SECRET-KEY-PQ-1QQQQQQ",
                     Bech32.encode(hrp: "AGE-PLUGIN-X-", data: [1, 2, 3], uppercase: true)] {
            let error = try #require(throws: ContingencyError.self) { try AgeIdentity(parsing: text) }
            #expect(error.isConfiguration && !error.description.contains(text))
        }
        #expect(throws: ContingencyError.self) { try AgeRecipient.passphrase("") }
        #expect(throws: ContingencyError.self) { try AgeRecipient.passphrase("x", workFactor: 23) }
        #expect(throws: ContingencyError.self) { try AgeRecipient.passphrase("x", workFactor: 0) }
    }

    @Test func descriptionsHideSecrets() throws {
        let passphrase = "correct horse battery staple"
        let recipient = try AgeRecipient.passphrase(passphrase, workFactor: 10)
        let identity = AgeIdentity.passphrase(passphrase)
        let key = AgeIdentity.generate()
        for text in [String(describing: recipient), String(reflecting: recipient), String(describing: identity),
                     String(reflecting: identity), String(describing: [recipient]), dumped(recipient), dumped(identity)] {
            #expect(!text.contains("horse"), "\(text)")
            #expect(text.contains("passphrase (scrypt)"), "\(text)")
        }
        for text in [String(describing: key), String(reflecting: key), dumped(key), String(describing: [key])] {
            #expect(!text.contains(key.encoded!) && !text.contains("AGE-SECRET-KEY"), "\(text)")
            #expect(text.contains(key.recipient!.encoded!), "\(text)")
        }
        #expect(String(describing: key.recipient!) == key.recipient!.encoded!)
        #expect(recipient.encoded == nil && identity.encoded == nil && identity.recipient == nil)
    }

    private func dumped<T>(_ value: T) -> String {
        var text = ""
        dump(value, to: &text)
        return text
    }

    @Test func base64IsStrict() {
        for count in 0..<70 {
            let bytes = AgeTestUtil.random(count)
            let text = AgeBase64.encode(bytes)
            #expect(text == Data(bytes).base64EncodedString().replacingOccurrences(of: "=", with: ""))
            #expect(AgeBase64.decode(Array(text.utf8)) == bytes)
        }
        #expect(AgeBase64.decode(Array("AAA=".utf8)) == nil)     // padding
        #expect(AgeBase64.decode(Array("AB".utf8)) == nil)       // non-canonical: unused bits set
        #expect(AgeBase64.decode(Array("AAB".utf8)) == nil)
        #expect(AgeBase64.decode(Array("A".utf8)) == nil)        // dangling character
        #expect(AgeBase64.decode(Array("AA\r".utf8)) == nil)
        #expect(AgeBase64.decode(Array("AA-_".utf8)) == nil)     // URL alphabet
        #expect(AgeBase64.decode(Array("AA".utf8)) == [0])
    }
}

/// Encryption and decryption: round trips, streaming, tampering, misuse.
@Suite("age streams")
struct AgeStreamTests {
    static let sizes = [0, 1, 15, 16, 17, 65_535, 65_536, 65_537, 131_072, 131_073, 1_048_576 + 3]

    @Test(arguments: sizes)
    func x25519RoundTrip(size: Int) throws {
        let identity = AgeIdentity.generate()
        let plaintext = AgeTestUtil.random(size)
        let encrypted = try AgeTestUtil.encrypt(plaintext, to: [identity.recipient!])
        // Size: header + 16-byte nonce + one 16-byte tag per chunk (at least one chunk).
        let chunks = max(1, (size + 65_535) / 65_536)
        let headerSize = encrypted.count - 16 - size - 16 * chunks
        #expect(headerSize > 100 && headerSize < 200)
        #expect(try AgeTestUtil.decrypt(encrypted, with: [identity]) == plaintext)
        #expect(try AgeTestUtil.decrypt(encrypted, with: [AgeIdentity.generate(), identity], sourceReads: [1, 7, 65_553]) == plaintext)
    }

    @Test func passphraseRoundTrip() throws {
        let plaintext = AgeTestUtil.random(200_000)
        let encrypted = try AgeTestUtil.encrypt(plaintext, to: [try AgeRecipient.passphrase("pass phrase ü", workFactor: 10)])
        #expect(String(decoding: encrypted.prefix(60), as: UTF8.self).contains("-> scrypt "))
        #expect(try AgeTestUtil.decrypt(encrypted, with: [.passphrase("nope"), .passphrase("pass phrase ü")]) == plaintext)
        AgeTestUtil.expectKeyError("the passphrase is wrong") {
            _ = try AgeTestUtil.decrypt(encrypted, with: [.passphrase("pass phrase u")])
        }
        AgeTestUtil.expectKeyError("no passphrase was given") {
            _ = try AgeTestUtil.decrypt(encrypted, with: [AgeIdentity.generate()])
        }
        // A work factor above the identity's limit is refused before scrypt runs.
        AgeTestUtil.expectKeyError("work factor 10 is above the accepted maximum 9") {
            _ = try AgeTestUtil.decrypt(encrypted, with: [.passphrase("pass phrase ü", maxWorkFactor: 9)])
        }
    }

    @Test func multipleRecipientsEachDecrypt() throws {
        let a = AgeIdentity.generate(), b = AgeIdentity.generate(), c = AgeIdentity.generate()
        let plaintext = AgeTestUtil.random(70_000)
        let encrypted = try AgeTestUtil.encrypt(plaintext, to: [a.recipient!, b.recipient!])
        #expect(try AgeTestUtil.decrypt(encrypted, with: [a]) == plaintext)
        #expect(try AgeTestUtil.decrypt(encrypted, with: [b]) == plaintext)
        #expect(try AgeTestUtil.decrypt(encrypted, with: [c, b]) == plaintext)
        let error = AgeTestUtil.expectKeyError("no stanza matched") { _ = try AgeTestUtil.decrypt(encrypted, with: [c]) }
        #expect(error?.hint?.contains("AGE_IDENTITY_FILE") == true)
        #expect(error.map { !$0.description.contains(c.encoded!) } == true)
        AgeTestUtil.expectKeyError("no stanza matched") { _ = try AgeTestUtil.decrypt(encrypted, with: []) }
        AgeTestUtil.expectKeyError("no stanza matched") { _ = try AgeTestUtil.decrypt(encrypted, with: [.passphrase("x")]) }
        let summary = try AgeHeaderSummary.read(from: AgeMemorySource(encrypted))
        #expect(summary.stanzaTypes == ["X25519", "X25519"] && !summary.isPassphraseEncrypted)
        let source = try AgeDecryptingSource(identities: [b], source: AgeMemorySource(encrypted))
        #expect(source.stanzaTypes == ["X25519", "X25519"])
    }

    @Test func streamsTwentyMiBInOddPieces() throws {
        let identity = AgeIdentity.generate()
        let plaintext = AgeTestUtil.random(20 * 1_048_576 + 12_345)
        let encrypted = try AgeTestUtil.encrypt(
            plaintext, to: [identity.recipient!], writeSizes: [1, 7, 65_535, 3, 65_536, 65_537, 100_003, 13, 262_147])
        let decrypted = try AgeTestUtil.decrypt(
            encrypted, with: [identity], sourceReads: [4_096, 1, 65_552, 99_999, 17], readSizes: [1, 13, 4_095, 70_001, 65_536, 3])
        #expect(decrypted.count == plaintext.count)
        #expect(decrypted == plaintext)
    }

    @Test func sinkMisuse() throws {
        let identity = AgeIdentity.generate()
        #expect(throws: ContingencyError.self) { _ = try AgeEncryptingSink(recipients: [], next: AgeMemorySink()) }
        let mixed = try #require(throws: ContingencyError.self) {
            _ = try AgeEncryptingSink(recipients: [identity.recipient!, try .passphrase("p", workFactor: 1)], next: AgeMemorySink())
        }
        #expect(mixed.isConfiguration)
        let output = AgeMemorySink()
        let sink = try AgeEncryptingSink(recipients: [identity.recipient!], next: output)
        try [UInt8]("hello".utf8).withUnsafeBytes { try sink.write($0) }
        try sink.finish()
        try sink.finish() // idempotent
        #expect(throws: ContingencyError.self) { try [UInt8]("more".utf8).withUnsafeBytes { try sink.write($0) } }
        #expect(try AgeTestUtil.decrypt(output.bytes, with: [identity]) == Array("hello".utf8))
    }

    @Test func failingNextSinkStopsTheStream() throws {
        final class FailingSink: ByteSink {
            var budget: Int
            init(budget: Int) { self.budget = budget }
            func write(_ bytes: UnsafeRawBufferPointer) throws {
                budget -= bytes.count
                if budget < 0 { throw ContingencyError.failed("disk full") }
            }
        }
        let sink = try AgeEncryptingSink(recipients: [AgeIdentity.generate().recipient!], next: FailingSink(budget: 1_000))
        let data = AgeTestUtil.random(200_000)
        #expect(throws: ContingencyError.failed("disk full")) { try data.withUnsafeBytes { try sink.write($0) } }
        #expect(throws: ContingencyError.self) { try sink.finish() }
    }

    // MARK: tampering

    /// A 3-chunk file (64 KiB + 64 KiB + 1000 bytes) and its identity.
    private func sample() throws -> (identity: AgeIdentity, plaintext: [UInt8], encrypted: [UInt8], headerSize: Int) {
        let identity = AgeIdentity.generate()
        let plaintext = AgeTestUtil.random(2 * 65_536 + 1_000)
        let encrypted = try AgeTestUtil.encrypt(plaintext, to: [identity.recipient!])
        let headerSize = encrypted.count - 16 - plaintext.count - 3 * 16
        return (identity, plaintext, encrypted, headerSize)
    }

    @Test func wrongIdentity() throws {
        let s = try sample()
        AgeTestUtil.expectKeyError("no stanza matched") { _ = try AgeTestUtil.decrypt(s.encrypted, with: [AgeIdentity.generate()]) }
    }

    @Test func truncatedFilesFail() throws {
        let s = try sample()
        let h = s.headerSize
        let chunk = 65_552
        let lengths: [(Int, String)] = [
            (0, "age header is invalid"), (10, "age header is invalid"), (h - 1, "age header is invalid"),
            (h, "age header is invalid"), (h + 15, "age header is invalid"),       // inside the payload nonce
            (h + 16, "no chunk at all"), (h + 16 + 10, "encrypted payload"),
            (h + 16 + chunk - 1, "failed authentication at chunk 0"),
            (h + 16 + chunk, "ends without a final chunk"),                           // cut at a chunk boundary
            (h + 16 + 2 * chunk, "ends without a final chunk"),
            (h + 16 + 2 * chunk + 15, "shorter than its 16-byte tag"),
            (h + 16 + 2 * chunk + 16, "empty final chunk"),
            (s.encrypted.count - 1, "failed authentication at chunk 2"),
        ]
        for (length, phrase) in lengths {
            var released = 0
            AgeTestUtil.expectKeyError(phrase) {
                _ = try AgeTestUtil.decrypt(Array(s.encrypted.prefix(length)), with: [s.identity]) { released += $0.count }
            }
            // Whatever came out before the failure is whole, authenticated chunks.
            #expect(released % 65_536 == 0, "cut at \(length)")
        }
    }

    @Test func flippedBytesFail() throws {
        let s = try sample()
        let h = s.headerSize
        let text = String(decoding: s.encrypted.prefix(h), as: UTF8.self)
        let stanzaBody = text.range(of: "\n", range: text.range(of: "-> X25519 ")!.upperBound..<text.endIndex)!.upperBound
        let positions: [(Int, String)] = [
            (3, "age header is invalid"),                                   // version line
            (text.utf8.distance(from: text.startIndex, to: stanzaBody) + 5, "no stanza matched"),  // wrapped file key
            (h - 10, "header MAC"),                                         // the MAC itself
            (h + 3, "failed authentication at chunk 0"),                    // payload nonce
            (h + 16 + 100, "failed authentication at chunk 0"),
            (h + 16 + 65_552 + 30_000, "failed authentication at chunk 1"), // the middle
            (s.encrypted.count - 500, "failed authentication at chunk 2"),  // the last chunk
            (s.encrypted.count - 1, "failed authentication at chunk 2"),    // its tag
        ]
        for (position, phrase) in positions {
            var copy = s.encrypted
            if position < h && position > 3 {
                // Inside base64: change one character to another base64 character, so the header still parses.
                copy[position] = copy[position] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            } else {
                copy[position] ^= 0x20
            }
            AgeTestUtil.expectKeyError(phrase) { _ = try AgeTestUtil.decrypt(copy, with: [s.identity]) }
        }
        // A changed ephemeral share: the stanza no longer unwraps.
        let share = text.utf8.distance(from: text.startIndex, to: text.range(of: "-> X25519 ")!.upperBound) + 4
        var copy = s.encrypted
        copy[share] = copy[share] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        AgeTestUtil.expectKeyError("no stanza matched") { _ = try AgeTestUtil.decrypt(copy, with: [s.identity]) }
    }

    @Test func extraOrMissingFinalChunkFails() throws {
        let identity = AgeIdentity.generate()
        let plaintext = AgeTestUtil.random(65_536)
        let encrypted = try AgeTestUtil.encrypt(plaintext, to: [identity.recipient!])
        // Trailing data after a full final chunk: its plaintext comes out (authenticated), then the error.
        var released: [UInt8] = []
        AgeTestUtil.expectKeyError("data after its final chunk") {
            _ = try AgeTestUtil.decrypt(encrypted + [0], with: [identity]) { released += $0 }
        }
        #expect(released == plaintext)
        AgeTestUtil.expectKeyError("data after its final chunk") {
            _ = try AgeTestUtil.decrypt(encrypted + AgeTestUtil.random(100), with: [identity])
        }
        // A second file's payload appended: the extra final chunk fails.
        let other = try AgeTestUtil.encrypt(AgeTestUtil.random(10), to: [identity.recipient!])
        AgeTestUtil.expectKeyError("encrypted payload") {
            _ = try AgeTestUtil.decrypt(encrypted + other.suffix(26), with: [identity])
        }
        // A short final chunk followed by anything is not a valid chunk boundary.
        let small = try AgeTestUtil.encrypt(AgeTestUtil.random(100), to: [identity.recipient!])
        AgeTestUtil.expectKeyError("failed authentication at chunk 0") {
            _ = try AgeTestUtil.decrypt(small + [1, 2, 3], with: [identity])
        }
        // Chunks swapped.
        let three = try AgeTestUtil.encrypt(AgeTestUtil.random(3 * 65_536), to: [identity.recipient!])
        let h = three.count - 16 - 3 * 65_552
        var swapped = Array(three.prefix(h + 16))
        swapped += three[(h + 16 + 65_552)..<(h + 16 + 2 * 65_552)]
        swapped += three[(h + 16)..<(h + 16 + 65_552)]
        swapped += three[(h + 16 + 2 * 65_552)...]
        AgeTestUtil.expectKeyError("failed authentication at chunk 0") { _ = try AgeTestUtil.decrypt(swapped, with: [identity]) }
        // The last chunk dropped: the new last chunk is not marked final.
        AgeTestUtil.expectKeyError("ends without a final chunk") {
            _ = try AgeTestUtil.decrypt(Array(three.prefix(h + 16 + 2 * 65_552)), with: [identity])
        }
    }

    @Test func scryptMixedWithOtherStanzasIsRefused() throws {
        // An scrypt stanza added to a valid X25519 header: refused before any unwrapping.
        let identity = AgeIdentity.generate()
        let encrypted = try AgeTestUtil.encrypt(Array("secret".utf8), to: [identity.recipient!])
        let text = String(decoding: encrypted, as: UTF8.self)
        let insertAt = text.utf8.distance(from: text.startIndex, to: text.range(of: "-> X25519")!.lowerBound)
        let scrypt = AgeStanza(type: "scrypt", arguments: [AgeBase64.encode(AgeTestUtil.random(16)), "10"], body: AgeTestUtil.random(32))
        let mixed = Array(encrypted[..<insertAt]) + scrypt.encoded() + Array(encrypted[insertAt...])
        AgeTestUtil.expectKeyError("scrypt (passphrase) stanza is mixed") {
            _ = try AgeTestUtil.decrypt(mixed, with: [identity, .passphrase("x")])
        }
        #expect(throws: ContingencyError.self) { _ = try AgeHeaderSummary.read(from: AgeMemorySource(mixed)) }
    }

    @Test func notAnAgeFile() throws {
        for bytes in [[], Array("hello world\n".utf8), Array("age-encryption.org/v2\n-> X25519 AA\n\n--- x\n".utf8),
                      [UInt8](repeating: 0x41, count: 200_000)] {
            AgeTestUtil.expectKeyError("age header is invalid") { _ = try AgeTestUtil.decrypt(bytes, with: [AgeIdentity.generate()]) }
        }
    }
}

/// Interoperability with the stock `age` and `age-keygen` (Debian's age 1.1.1), both directions.
@Suite("age CLI interop", .serialized)
struct AgeCLITests {
    static let sizes = [0, 1, 65_536, 65_537, 1_048_576 + 777]

    private func keygen(_ folder: TemporaryDirectory, _ name: String) async throws -> (file: URL, identity: AgeIdentity) {
        let file = folder.appending(name)
        _ = try await ProcessRunner.run("age-keygen", ["-o", file.path], requireSuccess: true)
        let identities = try AgeIdentity.parseFile(try String(contentsOf: file, encoding: .utf8))
        return (file, identities[0])
    }

    @Test func ourX25519FilesDecryptWithAge() async throws {
        let folder = try TemporaryDirectory(prefix: "age-interop")
        let one = try await keygen(folder, "one.key")
        let two = try await keygen(folder, "two.key")
        for size in Self.sizes {
            let plaintext = AgeTestUtil.random(size)
            for recipients in [[one.identity.recipient!], [one.identity.recipient!, two.identity.recipient!]] {
                let encrypted = folder.appending("ours-\(size).age")
                try AgeTestUtil.write(try AgeTestUtil.encrypt(plaintext, to: recipients), to: encrypted)
                for key in recipients.count == 1 ? [one] : [one, two] {
                    let output = folder.appending("ours-\(size).out")
                    try? FileManager.default.removeItem(at: output)
                    _ = try await ProcessRunner.run("age", ["-d", "-i", key.file.path, "-o", output.path, encrypted.path],
                                                    requireSuccess: true)
                    // age opens its output lazily: an empty plaintext leaves no file.
                    let decrypted = FileManager.default.fileExists(atPath: output.path) ? try AgeTestUtil.read(output) : []
                    #expect(decrypted == plaintext, "size \(size), \(recipients.count) recipient(s)")
                }
            }
        }
    }

    @Test func ourPassphraseFileDecryptsWithAge() async throws {
        let folder = try TemporaryDirectory(prefix: "age-interop")
        let plaintext = AgeTestUtil.random(100_000)
        let encrypted = folder.appending("ours.age")
        // age's default work factor, as production uses.
        try AgeTestUtil.write(try AgeTestUtil.encrypt(plaintext, to: [try .passphrase("it's a secret: ÿ")]), to: encrypted)
        let output = folder.appending("ours.out")
        let result = try await AgeTestUtil.runAgeWithPassphrase("it's a secret: ÿ", ["-d", "-o", output.path, encrypted.path], in: folder)
        #expect(result.succeeded, "\(result)")
        #expect(try AgeTestUtil.read(output) == plaintext)
        let wrong = try await AgeTestUtil.runAgeWithPassphrase("not it", ["-d", "-o", folder.appending("x").path, encrypted.path], in: folder)
        #expect(!wrong.succeeded && wrong.stderr.contains("incorrect passphrase"), "\(wrong)")
    }

    @Test func ageFilesDecryptWithUs() async throws {
        let folder = try TemporaryDirectory(prefix: "age-interop")
        let one = try await keygen(folder, "one.key")
        let two = try await keygen(folder, "two.key")
        let recipientsFile = folder.appending("recipients.txt")
        try Data("# operators\n\(one.identity.recipient!)\n\(two.identity.recipient!)\n".utf8).write(to: recipientsFile)
        for size in Self.sizes {
            let plaintext = AgeTestUtil.random(size)
            let input = folder.appending("plain-\(size)")
            try AgeTestUtil.write(plaintext, to: input)
            let runs: [(String, [String], [AgeIdentity])] = [
                ("-r", ["-r", one.identity.recipient!.encoded!], [one.identity]),
                ("-e -i", ["-e", "-i", two.file.path], [two.identity]),
                ("-R", ["-R", recipientsFile.path], [two.identity]),
            ]
            for (label, arguments, identities) in runs {
                let encrypted = folder.appending("theirs-\(size).age")
                try? FileManager.default.removeItem(at: encrypted)
                _ = try await ProcessRunner.run("age", arguments + ["-o", encrypted.path, input.path], requireSuccess: true)
                let bytes = try AgeTestUtil.read(encrypted)
                #expect(try AgeTestUtil.decrypt(bytes, with: identities, sourceReads: [1_000, 70_000]) == plaintext, "age \(label), size \(size)")
                AgeTestUtil.expectKeyError("no stanza matched") { _ = try AgeTestUtil.decrypt(bytes, with: [AgeIdentity.generate()]) }
            }
        }
    }

    @Test func agePassphraseFileDecryptsWithUs() async throws {
        let folder = try TemporaryDirectory(prefix: "age-interop")
        let plaintext = AgeTestUtil.random(65_536 * 2)
        let input = folder.appending("plain")
        try AgeTestUtil.write(plaintext, to: input)
        let encrypted = folder.appending("theirs.age")
        let result = try await AgeTestUtil.runAgeWithPassphrase("hunter2 hunter2", ["-p", "-o", encrypted.path, input.path], in: folder)
        #expect(result.succeeded, "\(result)")
        let bytes = try AgeTestUtil.read(encrypted)
        #expect(try AgeHeaderSummary.read(from: AgeMemorySource(bytes)).isPassphraseEncrypted)
        #expect(try AgeTestUtil.decrypt(bytes, with: [.passphrase("hunter2 hunter2")]) == plaintext)
        AgeTestUtil.expectKeyError("the passphrase is wrong") { _ = try AgeTestUtil.decrypt(bytes, with: [.passphrase("hunter3")]) }
    }
}
