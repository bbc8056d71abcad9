// libFuzzer target: age files as restore-job reads an encrypted archive (header, stanzas, payload chunks), and
// the key lists of AGE_RECIPIENTS and identity files.
import BackupCore
import BackupInterop

/// The identity and passphrase of the age test vectors (C2SP/CCTV), so that seeds made from them get past the
/// header into the payload. The work factor is capped at 10, the vectors' own, to keep each run fast.
private let identities: [AgeIdentity] = [
    try! AgeIdentity(parsing: "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0"),
    AgeIdentity.passphrase("password", maxWorkFactor: 10),
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAge(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? AgeHeaderSummary.read(from: MemorySource(bytes))
    if let source = try? AgeDecryptingSource(identities: identities, source: MemorySource(bytes)) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while let count = try? buffer.withUnsafeMutableBytes({ try source.read(into: $0) }), count > 0 {}
    }
    let text = String(decoding: bytes, as: UTF8.self)
    _ = try? AgeRecipient.parseList(text)
    _ = try? AgeIdentity.parseFile(text)
    return 0
}
