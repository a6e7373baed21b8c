/// Whether `n` is prime. Deterministic Miller-Rabin with the first twelve prime bases, exact for
/// every 64-bit `n`, so validating a huge `--size` is instant.
public func isPrime(_ n: Int) -> Bool {
    if n < 2 { return false }
    let smallPrimes: [UInt64] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]
    let m = UInt64(n)
    for p in smallPrimes {
        if m == p { return true }
        if m % p == 0 { return false }
    }
    // m - 1 = d * 2^r with d odd.
    var d = m - 1
    var r = 0
    while d & 1 == 0 {
        d >>= 1
        r += 1
    }
    witnessLoop: for a in smallPrimes {
        var x = powMod(a, d, m)
        if x == 1 || x == m - 1 { continue }
        for _ in 1..<max(r, 1) {
            x = mulMod(x, x, m)
            if x == m - 1 { continue witnessLoop }
        }
        return false
    }
    return true
}

/// The smallest prime strictly greater than `n` (used for hints in error messages).
func nextPrime(after n: Int) -> Int {
    var candidate = max(n + 1, 2)
    while !isPrime(candidate) { candidate += 1 }
    return candidate
}

@inline(__always)
private func mulMod(_ a: UInt64, _ b: UInt64, _ m: UInt64) -> UInt64 {
    let product = a.multipliedFullWidth(by: b)
    return m.dividingFullWidth((product.high, product.low)).remainder
}

private func powMod(_ base: UInt64, _ exponent: UInt64, _ m: UInt64) -> UInt64 {
    var result: UInt64 = 1
    var b = base % m
    var e = exponent
    while e > 0 {
        if e & 1 == 1 { result = mulMod(result, b, m) }
        b = mulMod(b, b, m)
        e >>= 1
    }
    return result
}
