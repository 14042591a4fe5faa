//! Pareto fronts over points with several objectives, all minimised.

/// Whether `a` dominates `b`: no worse in every objective and better in one.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y)
}

/// Indices of the points no other point dominates, in input order. Equal points are all
/// kept. Quadratic, which is fine for the few hundred points of a sweep.
pub fn front(points: &[Vec<f64>]) -> Vec<usize> {
    (0..points.len())
        .filter(|&i| !points.iter().any(|q| dominates(q, &points[i])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_of_a_small_set() {
        // (cost, loss): (1,5) (2,3) (3,3) (4,1) (2,6)
        let p = vec![
            vec![1.0, 5.0],
            vec![2.0, 3.0],
            vec![3.0, 3.0],
            vec![4.0, 1.0],
            vec![2.0, 6.0],
        ];
        assert_eq!(front(&p), vec![0, 1, 3]);
    }

    #[test]
    fn equal_points_are_kept() {
        let p = vec![vec![1.0, 1.0], vec![1.0, 1.0]];
        assert_eq!(front(&p), vec![0, 1]);
    }
}
