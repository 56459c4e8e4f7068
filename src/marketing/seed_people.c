/* seed_people.c - synthetic Nanjing residents: names, phones, ID numbers,
 * addresses; plus the PRNG and date arithmetic the seed uses. */
#include <stdio.h>
#include <string.h>

#include "marketing/seedgen.h"

/* --- PRNG: splitmix64 to seed xoshiro256** --- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void sg_rng_seed(sg_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ull);
    x = splitmix64(&x) ^ stream;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sg_next(sg_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t sg_below(sg_rng *r, uint32_t n)
{
    return (uint32_t)(((sg_next(r) >> 32) * (uint64_t)n) >> 32);
}

double sg_unit(sg_rng *r)
{
    return (double)(sg_next(r) >> 11) * 0x1.0p-53;
}

double sg_range(sg_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * sg_unit(r);
}

char *sg_digits(char *out, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return out + width;
}

/* --- civil dates (after H. Hinnant's public-domain algorithms) --- */

int64_t sg_days_from_civil(int y, int m, int d)
{
    int64_t yy = y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void sg_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int sg_days_in_month(int y, int m)
{
    static const int dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : dm[m - 1];
}

int sg_weekday(int64_t z)
{
    int64_t w = (z + 3) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

/* --- districts --- */

static const struct {
    const char *name;
    const char *code;
    int weight;               /* roughly households, in 10,000s */
    const char *roads[7];     /* stems: "<stem>路" */
} districts[SG_DISTRICTS] = {
    { "玄武区", "320102", 22, { "中山", "珠江", "北京东", "龙蟠中", "太平北", "后宰门", "板仓" } },
    { "秦淮区", "320104", 36, { "中华", "健康", "白下", "瑞金", "龙蟠南", "大光", "升州" } },
    { "建邺区", "320105", 22, { "江东中", "庐山", "黄山", "嵩山", "乐山", "恒山", "云龙山" } },
    { "鼓楼区", "320106", 40, { "中山北", "湖南", "广州", "汉中", "虎踞", "北京西", "宁海" } },
    { "浦口区", "320111", 42, { "浦珠", "文德", "柳州", "浦滨", "龙华", "江浦", "雨山" } },
    { "栖霞区", "320113", 36, { "迈尧", "和燕", "文苑", "学海", "尧新", "马群", "恒通" } },
    { "雨花台区", "320114", 22, { "雨花西", "凤台南", "宁南", "安德门", "花神", "铁心桥", "西善桥" } },
    { "江宁区", "320115", 66, { "天元中", "胜太", "竹山", "金箔", "秣陵", "东山", "上元" } },
    { "六合区", "320116", 32, { "雄州东", "龙池", "延安", "园林", "文峰", "泰山", "长江" } },
    { "溧水区", "320117", 17, { "珍珠南", "天生桥", "交通", "宝塔", "通济", "中山", "秦淮" } },
    { "高淳区", "320118", 16, { "淳溪", "宝塔", "镇兴", "北岭", "丹阳湖", "双湖", "花山" } },
};

const char *sg_district_name(int i)
{
    return districts[i].name;
}

const char *sg_district_code(int i)
{
    return districts[i].code;
}

/* Codes that people born before the 2013 mergers still carry. */
static const char *const old_codes[] = {
    "320103", /* 白下区, now 秦淮 */
    "320107", /* 下关区, now 鼓楼 */
    "320124", /* 溧水县 */
    "320125", /* 高淳县 */
};

/* --- names --- */

/* The most common surnames, most frequent first. */
static const char *const surnames[] = {
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡",
    "郭", "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
    "彭", "曾", "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏",
    "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金",
    "石", "廖", "贾", "夏", "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹",
    "薛", "闫", "段", "雷", "侯", "龙", "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵",
    "万", "钱", "严", "覃", "武", "戴", "莫", "孔", "向", "汤",
};
static const char *const compound_surnames[] = { "欧阳", "诸葛", "司马", "上官", "东方" };

static const char *const given_male[] = {
    "伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "华",
    "飞", "鑫", "波", "斌", "宇", "浩", "凯", "健", "俊", "帆", "帅", "旭", "宁", "龙", "林",
    "建", "国", "志", "文", "晨", "博", "昊", "子", "轩", "睿", "泽", "海", "峰", "春", "晓",
};
static const char *const given_female[] = {
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "玲", "桂", "英", "萍", "红", "燕",
    "婷", "雪", "慧", "琳", "颖", "倩", "洁", "梅", "兰", "琴", "云", "莉", "欣", "怡", "佳",
    "晓", "文", "思", "雨", "梦", "涵", "悦", "嘉", "诗", "月", "春", "凤", "珍", "玉", "蕾",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* pick_surname - Zipf-like: the weight of rank k is 10000/(k+8). */
static const char *pick_surname(sg_rng *r)
{
    uint32_t total = 0, u;

    if (sg_below(r, 1000) < 3)
        return compound_surnames[sg_below(r, COUNT(compound_surnames))];
    for (uint32_t k = 0; k < COUNT(surnames); k++)
        total += 10000 / (k + 8);
    u = sg_below(r, total);
    for (uint32_t k = 0; k < COUNT(surnames); k++) {
        uint32_t w = 10000 / (k + 8);
        if (u < w)
            return surnames[k];
        u -= w;
    }
    return surnames[0];
}

static void make_name(sg_rng *r, int male, char *out, size_t outsz)
{
    const char *const *g = male ? given_male : given_female;
    size_t n = male ? COUNT(given_male) : COUNT(given_female);
    const char *first = g[sg_below(r, (uint32_t)n)];

    if (sg_below(r, 100) < 72) { /* two-character given name */
        const char *second = g[sg_below(r, (uint32_t)n)];
        snprintf(out, outsz, "%s%s%s", pick_surname(r), first, second);
    } else {
        snprintf(out, outsz, "%s%s", pick_surname(r), first);
    }
}

/* --- phones, IDs, addresses --- */

static const char *const phone_prefixes[] = {
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "147", "150",
    "151", "152", "153", "155", "156", "157", "158", "159", "166", "173", "175", "176",
    "177", "178", "180", "181", "182", "183", "184", "185", "186", "187", "188", "189",
    "191", "193", "195", "198", "199",
};

static void make_phone(sg_rng *r, char out[12])
{
    const char *p = phone_prefixes[sg_below(r, COUNT(phone_prefixes))];
    memcpy(out, p, 3);
    for (int i = 3; i < 11; i++)
        out[i] = (char)('0' + sg_below(r, 10));
    out[11] = '\0';
}

char sg_id_check(const char *first17)
{
    static const int w[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 };
    static const char map[] = "10X98765432";
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (first17[i] - '0') * w[i];
    return map[sum % 11];
}

/* pick_district - weighted by households. */
static int pick_district(sg_rng *r)
{
    int total = 0, u;
    for (int i = 0; i < SG_DISTRICTS; i++)
        total += districts[i].weight;
    u = (int)sg_below(r, (uint32_t)total);
    for (int i = 0; i < SG_DISTRICTS; i++) {
        if (u < districts[i].weight)
            return i;
        u -= districts[i].weight;
    }
    return 0;
}

void sg_person_make(sg_rng *r, int as_of_year, sg_person *p)
{
    char first17[18];
    const char *area;
    int age, month, day, seq;

    memset(p, 0, sizeof *p);
    p->district = pick_district(r);
    p->male = (int)sg_below(r, 2);
    make_name(r, p->male, p->name, sizeof p->name);
    make_phone(r, p->phone);

    /* holders are adults; most between 30 and 70 */
    age = 22 + (int)((sg_below(r, 34) + sg_below(r, 34)));
    if (sg_below(r, 10) == 0)
        age = 22 + (int)sg_below(r, 67);
    p->birth_year = as_of_year - age;
    month = 1 + (int)sg_below(r, 12);
    day = 1 + (int)sg_below(r, (uint32_t)sg_days_in_month(p->birth_year, month));
    area = districts[p->district].code;
    if (sg_below(r, 100) < 30)
        area = districts[sg_below(r, SG_DISTRICTS)].code;
    if (p->birth_year < 1995 && sg_below(r, 100) < 8)
        area = old_codes[sg_below(r, COUNT(old_codes))];
    seq = (int)sg_below(r, 500) * 2 + (p->male ? 1 : 0); /* odd = male */
    memcpy(first17, area, 6);
    sg_digits(first17 + 6, (unsigned)p->birth_year, 4);
    sg_digits(first17 + 10, (unsigned)month, 2);
    sg_digits(first17 + 12, (unsigned)day, 2);
    sg_digits(first17 + 14, (unsigned)seq, 3);
    first17[17] = '\0';
    snprintf(p->id_no, sizeof p->id_no, "%s%c", first17, sg_id_check(first17));

    snprintf(p->address, sizeof p->address, "南京市%s%s路%d号%d栋%d%02d室",
             districts[p->district].name,
             districts[p->district].roads[sg_below(r, COUNT(districts[0].roads))],
             1 + (int)sg_below(r, 299), 1 + (int)sg_below(r, 36), 1 + (int)sg_below(r, 26),
             1 + (int)sg_below(r, 4));
}
