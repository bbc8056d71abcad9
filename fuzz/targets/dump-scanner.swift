// libFuzzer target: pg_dump custom-format archives, as restore-job follows a dump while it streams in.
import BackupInterop

/// Feeds `bytes` to a scanner `chunk` bytes at a time, then finishes it.
private func scan(_ bytes: [UInt8], chunk: Int) -> (scanner: CustomDumpScanner, blocks: [CustomDumpScanner.Block]) {
    let scanner = CustomDumpScanner()
    var blocks: [CustomDumpScanner.Block] = []
    var offset = 0
    while offset < bytes.count {
        let end = min(bytes.count, offset + chunk)
        blocks += bytes[offset..<end].withUnsafeBytes { scanner.consume($0) }
        offset = end
    }
    blocks += scanner.finish()
    return (scanner, blocks)
}

/// Any input: no trap, blocks in order inside the data area, and the same result however the bytes are cut
/// (the property restore-job relies on: reads of any size).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDumpScanner(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let whole = scan(bytes, chunk: max(bytes.count, 1))
    // A few pieces only: the table of contents is parsed again on each piece while it is incomplete.
    let cut = scan(bytes, chunk: max(1, bytes.count / (2 + Int(bytes.last ?? 0) % 7)))
    precondition((whole.scanner.failure == nil) == (cut.scanner.failure == nil), "cut or whole: one failed")
    precondition(whole.blocks == cut.blocks, "cut or whole: different blocks")
    precondition(whole.scanner.contents?.entries == cut.scanner.contents?.entries, "cut or whole: different entries")
    var end = whole.scanner.contents?.tableOfContentsSize ?? 0
    for block in whole.blocks {
        precondition(block.range.lowerBound >= end && block.range.upperBound <= Int64(bytes.count), "block out of place")
        end = block.range.upperBound
    }
    return 0
}
