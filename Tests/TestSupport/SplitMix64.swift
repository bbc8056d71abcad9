import Foundation

/// A small deterministic pseudo-random generator (SplitMix64): the same sequence for the same seed on every run, so
/// that sample content is reproducible and a failing test can be run again as it was.
public struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next `count` bytes of the sequence.
    public mutating func bytes(_ count: Int) -> Data {
        var data = Data(capacity: count + 8)
        while data.count < count {
            withUnsafeBytes(of: next().littleEndian) { data.append(contentsOf: $0) }
        }
        return data.prefix(count)
    }
}
