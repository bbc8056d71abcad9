import BackupCore
@testable import BackupInterop
import Foundation
import Testing
import TestSupport

/// The age testkit (C2SP/CCTV age/testdata): every vector for X25519 or passphrase identities, decrypted with
/// the expected outcome. Failure categories are told apart by the fixed phrases of the error messages; every
/// failure must be a `ContingencyError.key` (exit 12). For `success` and `payload failure`, the plaintext
/// released before the end or the error must hash to the vector's `payload`.
@Suite("age testkit vectors")
struct AgeTestkitTests {
    struct Vector {
        var expect = ""
        var payloadHash: String?
        var identities: [String] = []
        var passphrases: [String] = []
        var compressed = false
        var armored = false
        var body: [UInt8] = []

        init(_ file: [UInt8]) throws {
            let separator = try #require(file.indices.first { file[$0] == 0x0a && $0 + 1 < file.count && file[$0 + 1] == 0x0a })
            for line in String(decoding: file[..<separator], as: UTF8.self).split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2 else { continue }
                switch parts[0] {
                case "expect": expect = parts[1]
                case "payload": payloadHash = parts[1]
                case "identity": identities.append(parts[1])
                case "passphrase": passphrases.append(parts[1])
                case "compressed": compressed = parts[1] == "zlib"
                case "armored": armored = parts[1] == "yes"
                default: continue
                }
            }
            body = Array(file[(separator + 2)...])
        }
    }

    static func vector(named name: String) throws -> Vector {
        let entry = try #require(ageTestkitVectors.first { $0.name == name })
        let bytes = try #require(Data(base64Encoded: entry.base64, options: .ignoreUnknownCharacters))
        return try Vector(Array(bytes))
    }

    /// zlib-decompresses with Python (no zlib binding in the test target; Python is already a test dependency).
    static func inflate(_ bytes: [UInt8]) async throws -> [UInt8] {
        let folder = try TemporaryDirectory(prefix: "age-vector")
        let input = folder.appending("in.z"), output = folder.appending("out")
        try Data(bytes).write(to: input)
        _ = try await ProcessRunner.run(
            "python3", ["-c", "import sys, zlib; open(sys.argv[2], 'wb').write(zlib.decompress(open(sys.argv[1], 'rb').read()))",
                        input.path, output.path], requireSuccess: true)
        return Array(try Data(contentsOf: output))
    }

    @Test func inventory() throws {
        #expect(ageTestkitVectors.count == 92)
        #expect(ageTestkitSkippedVectors.count == 51)
        var categories: [String: Int] = [:]
        for entry in ageTestkitVectors {
            let vector = try Self.vector(named: entry.name)
            #expect(!vector.armored && !vector.identities.contains { $0.hasPrefix("AGE-SECRET-KEY-PQ-") }, "\(entry.name)")
            categories[vector.expect, default: 0] += 1
        }
        #expect(categories == ["success": 15, "payload failure": 18, "header failure": 51, "no match": 7, "HMAC failure": 1])
    }

    @Test(arguments: ageTestkitVectors.map(\.name))
    func vector(_ name: String) async throws {
        var vector = try Self.vector(named: name)
        if vector.compressed { vector.body = try await Self.inflate(vector.body) }
        let identities = try vector.identities.map { try AgeIdentity(parsing: $0) } + vector.passphrases.map { AgeIdentity.passphrase($0) }

        var released: [UInt8] = []
        var initError: ContingencyError?
        var readError: ContingencyError?
        do {
            let source = try AgeDecryptingSource(identities: identities, source: AgeMemorySource(vector.body, readSizes: [5_000, 70_000]))
            var buffer = [UInt8](repeating: 0, count: 50_000)
            do {
                while true {
                    let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
                    if n == 0 { break }
                    released += buffer[..<n]
                }
            } catch let error as ContingencyError {
                readError = error
            }
        } catch let error as ContingencyError {
            initError = error
        }
        for error in [initError, readError].compactMap({ $0 }) {
            #expect(error.exitStatus == .keyError, "\(name): \(error)")
        }

        let phrase: String? = switch vector.expect {
        case "header failure": "age header is invalid"
        case "no match": "no stanza matched"
        case "HMAC failure": "header MAC"
        default: nil
        }
        switch vector.expect {
        case "success":
            #expect(initError == nil && readError == nil, "\(name): \(String(describing: initError ?? readError))")
            #expect(SHA256.hex(of: released) == vector.payloadHash, "\(name)")
        case "payload failure":
            #expect(initError == nil, "\(name): \(String(describing: initError))")
            #expect(readError?.message.contains("encrypted payload") == true, "\(name): \(String(describing: readError))")
            #expect(SHA256.hex(of: released) == vector.payloadHash, "\(name): \(released.count) bytes released")
        default:
            let phrase = try #require(phrase, "\(name): unknown expectation \(vector.expect)")
            #expect(initError?.message.contains(phrase) == true, "\(name): expected '\(phrase)', got \(String(describing: initError))")
        }
    }
}
