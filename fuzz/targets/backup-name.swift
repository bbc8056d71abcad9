// libFuzzer target: archive names as listed in a store (`visual_backup_2025-01-15_14-30-00.tar.gz.age`).
import BackupCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBackupName(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = BackupName.parseTimestamp(text)
    _ = BackupName.fileName(fromNameOrPath: text)
    // The default prefix, and a prefix of the input's own (up to its first NUL) for the rest of it.
    var candidates = [("visual_backup", text)]
    if let split = text.firstIndex(of: "\u{0}") {
        candidates.append((String(text[..<split]), String(text[text.index(after: split)...])))
    }
    for (prefix, fileName) in candidates {
        guard let name = BackupName.parse(fileName: fileName, prefix: prefix) else { continue }
        // A parsed name is written back exactly as it was read: the store's names are never rewritten.
        precondition(name.fileName == fileName, "\(name.fileName) != \(fileName)")
        precondition(BackupName.parse(fileName: name.manifestName, prefix: prefix) == nil)
    }
    return 0
}
