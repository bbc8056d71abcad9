import Testing

@testable import BackupCore

@Test(arguments: [
    (Int64(0), "0 B"),
    (1, "1 B"),
    (512, "512 B"),
    (1_023, "1023 B"),
    (1_024, "1 KB"),
    (1_075, "1 KB"),  // 1.0498 KB: one decimal rounds to 1.0, shown without ".0"
    (1_126, "1.1 KB"),  // 1.0996 KB
    (1_536, "1.5 KB"),
    (10_737, "10.5 KB"),  // 10.485 KB
    (1_048_575, "1 MB"),  // 1023.999 KB would round to "1024 KB": shown in the next unit
    (1_048_576, "1 MB"),
    (524_288_000, "500 MB"),
    (47_400_000, "45.2 MB"),
    (1_073_741_824, "1 GB"),
    (1_288_490_189, "1.2 GB"),
    (1_099_511_627_776, "1 TB"),
    (1_649_267_441_664, "1.5 TB"),
    (-1_536, "-1.5 KB"),
    (Int64.max, "8 EB"),
])
func byteStrings(_ pair: (Int64, String)) {
    #expect(ByteFormat.string(pair.0) == pair.1)
}

@Test(arguments: [
    (Int64(474_000_000), 10.0, "45.2 MB/s"),
    (0, 5, "0 B/s"),
    (1_536, 1, "1.5 KB/s"),
    (100, 0.5, "200 B/s"),
    (1_000, 3, "333 B/s"),
    (524_288_000, 0.5, "1000 MB/s"),
    (1_073_741_824, 0.25, "4 GB/s"),
    (1_000, 0, "n/a"),
    (1_000, -1, "n/a"),
    (1_000, .infinity, "n/a"),
])
func rates(_ row: (Int64, Double, String)) {
    #expect(ByteFormat.rate(bytes: row.0, seconds: row.1) == row.2)
}

@Test(arguments: [
    (0.0, "0 ms"),
    (0.0004, "0 ms"),
    (0.85, "850 ms"),
    (0.9994, "999 ms"),
    (0.9996, "1 s"),  // rounds to 1000 ms: shown in seconds
    (1, "1 s"),
    (12.34, "12.3 s"),
    (12.0, "12 s"),
    (59.94, "59.9 s"),
    (59.96, "1m 00s"),  // rounds to 60.0 s
    (60, "1m 00s"),
    (245, "4m 05s"),
    (245.4, "4m 05s"),
    (245.6, "4m 06s"),
    (3_599.4, "59m 59s"),
    (3_599.6, "1h 00m"),
    (7_380, "2h 03m"),
    (7_400, "2h 03m"),
    (90_000, "25h 00m"),
    (-5, "0 ms"),
    (.nan, "n/a"),
    (.infinity, "n/a"),
])
func durations(_ pair: (Double, String)) {
    #expect(DurationFormat.string(seconds: pair.0) == pair.1)
}

@Test(arguments: [
    (0.0, "0s"),
    (45, "45s"),
    (59.9, "59s"),
    (60, "1m"),
    (720, "12m"),
    (3_599, "59m"),
    (3_600, "1h"),
    (7_200, "2h"),
    (86_399, "23h"),
    (86_400, "1d"),
    (259_200, "3d"),
    (34_560_000, "400d"),  // 400 days
    (-10, "0s"),
])
func ages(_ pair: (Double, String)) {
    #expect(DurationFormat.age(seconds: pair.0) == pair.1)
}
